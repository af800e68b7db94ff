"""Configuration: the settings schema, loading (with the trust of project files) and writing back."""

import os

# The workbench uses no pydantic plugins. Looking for them reads every installed package's metadata
# when the first model is built (~8 ms of each start in this environment); a user's own value wins.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
