"""Images: the team's apps built into Docker images and pushed to a registry.

- `apps`: which apps exist (folders with a Dockerfile, or built from the app kit's), their git version and image tag.
- `engine`: the Docker engine (docker-py's low-level `APIClient`, imported lazily) and its local images.
- `build` / `push`: streaming build log and per-layer push progress, both cancellable (`stream`).
- `kit`: the build context, with the app kit's wheel in `kit/` for apps whose Dockerfile copies it,
  and the kit's Dockerfile for the apps built from it.
- `registry`: credentials (password, Docker's config, Azure identity) and the registry's HTTP API v2.
- `acr`: the Azure AD token to ACR refresh token exchange.
- `ops`: what the CLI and the Images mode call: build an app, push it, list everything.

Secrets are `SecretStr` and reach docker-py only as `auth_config`, never argv, logs or messages.
"""
