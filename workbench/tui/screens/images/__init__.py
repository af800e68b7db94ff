"""The Images mode: build and push the team's app images."""
