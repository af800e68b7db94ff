"""Deploy: one app version to a target's Docker engines over SSH, health-gated, switched through a reverse
proxy with no failed requests, with an audit trail and rollback that covers the model, not just the image.

The target is one or several Docker engines reached over SSH (`docker system dial-stdio` on the far side, the
user's keys and known_hosts on this side) or a local socket. On the first (the proxy's host) the workbench
keeps: a deploy lock per app (a created, never started container whose name is the lock), one nginx proxy
container publishing the apps' ports and balancing over each app's replicas, and the release records as
labels. On every host that runs a replica: its containers (one per replica and deployed version) on an
internal network, read-only volumes holding the artifact versions the app mounts, and the API-key volumes.
"""
