"""Configuration: the settings schema, loading (with the trust of project files) and writing back."""
