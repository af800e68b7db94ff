"""The Infra mode: validate, preview, deploy and tear down the ARM templates."""
