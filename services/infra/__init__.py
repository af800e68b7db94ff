"""The team's Azure environment: ARM templates checked offline, previewed, deployed and torn down.

`templates` loads and validates `infra/` without credentials, `policy` holds our own checks of a
template (what checkov misses), `arm` talks to Azure Resource Manager through the real SDK clients.
The Azure SDK is imported inside the functions that call it, never at import.
"""
