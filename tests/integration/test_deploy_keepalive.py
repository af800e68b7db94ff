"""The proxy never reuses an idle connection to a replica that the app may be closing.

An app server closes a keep-alive connection after a few idle seconds (uvicorn: 5). A proxy that keeps it
longer sometimes sends a request just as the app closes it; nginx counts that failure against a healthy
replica, and with another replica down (killed, say) none is left in rotation: every request is refused
(502) until the failure timeout passes. The bench saw it once as 82 of 192 requests refused after a replica
was killed.

The race is made certain here: inside one container of the test bed's proxy image, nginx runs the site
config a deploy writes over two replicas, one whose port refuses (the killed one) and one app server that
drops a request arriving on a connection idle for its keep-alive time or longer, unanswered, as a closing
server does when the request crosses its close.
"""

from __future__ import annotations

import docker

from services.deploy.proxy import files_tar, site_config
from services.deploy.upstream import FAIL_TIMEOUT_S, UPSTREAM_IDLE_S, remote_replica

APP_KEEPALIVE_S = 5.0
"""The app server's keep-alive: uvicorn's default."""
PORT, LIVE, GONE = 8080, 8001, 8002

APP = f"""
import socket, threading, time

def serve(conn):
    answered = None
    with conn:
        while True:
            request = b""
            while b"\\r\\n\\r\\n" not in request:
                data = conn.recv(65536)
                if not data:
                    return
                request += data
            if answered is not None and time.monotonic() - answered >= {APP_KEEPALIVE_S}:
                return  # idle for the keep-alive: closing, the request crossed it
            conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: keep-alive\\r\\n\\r\\nok")
            answered = time.monotonic()

listener = socket.create_server(("127.0.0.1", {LIVE}))
while True:
    threading.Thread(target=serve, args=(listener.accept()[0],), daemon=True).start()
"""

CLIENT = f"""
import http.client, socket, time
deadline = time.monotonic() + 30
for port in ({LIVE}, {PORT}):  # the app and nginx listen
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, port
            time.sleep(0.05)
proxy = http.client.HTTPConnection("127.0.0.1", {PORT}, timeout=30)  # one connection: one nginx worker

def status():
    proxy.request("GET", "/")
    response = proxy.getresponse()
    response.read()
    return response.status

first = [status(), status()]  # round robin tries both: the refusing one is out of rotation now
time.sleep({APP_KEEPALIVE_S} + 0.5)  # longer than the app keeps an idle connection, shorter than the ejection
print("statuses", *first, status())
"""


def test_a_request_never_meets_an_upstream_connection_the_app_is_closing(tb: dict[str, str]) -> None:
    assert UPSTREAM_IDLE_S < APP_KEEPALIVE_S < FAIL_TIMEOUT_S  # what makes the scenario below meaningful
    replicas = [remote_replica("live", "", "127.0.0.1", LIVE), remote_replica("gone", "", "127.0.0.1", GONE)]
    config = site_config("race", PORT, replicas, LIVE)
    script = "python3 /race/app.py & nginx && python3 /race/client.py"
    engine = docker.DockerClient(base_url=tb["WORKBENCH_TESTBED_DEPLOY_DOCKER_HOST"])
    container = engine.containers.create(tb["WORKBENCH_TESTBED_PROXY_IMAGE"], ["sh", "-c", script])
    try:
        container.put_archive("/", files_tar({"race/app.py": APP, "race/client.py": CLIENT}))
        container.put_archive("/etc/nginx/conf.d", files_tar({"race.conf": config}))
        container.start()
        assert container.wait(timeout=60)["StatusCode"] == 0, container.logs().decode(errors="replace")
        output = container.logs(stderr=False).decode(errors="replace")
    finally:
        container.remove(force=True)
        engine.close()
    statuses = next(line.split()[1:] for line in output.splitlines() if line.startswith("statuses"))
    assert statuses == ["200", "200", "200"], output  # nginx's access log may print after the client
