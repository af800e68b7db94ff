"""What a deploy says before it starts: the target's every host, the proxy's first, in the CLI's header and the
Deploy mode's confirmation."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from services.deploy.target import Target
from workbench.cli.main import cli
from workbench.present.deploy import hosts_text

H1, H2 = "ssh://ops@10.0.0.1:22", "ssh://ops@10.0.0.2:22"


def test_hosts_text_names_every_engine_the_proxys_first() -> None:
    assert hosts_text(Target("prod", H1, "prod", hosts=(H1, H2))) == f"{H1} (proxy), {H2}"
    assert hosts_text(Target("dev", H1, "dev")) == H1


def test_the_cli_header_names_every_host(tmp_path: Path) -> None:
    """Both hosts refuse SSH at once (port 1 on loopback): the deploy stops after its header."""
    staging = {"hosts": ["127.0.0.1", "127.0.0.2"], "user": "ops", "ssh_port": 1, "registry": "reg.example:5000",
               "apps": {"bot": {"port": 18999, "replicas": 2}}}  # fmt: skip
    environ = {
        "WORKBENCH_WORKSPACE__DATA_DIR": str(tmp_path / "workspace"),
        "WORKBENCH_TARGETS__STAGING": json.dumps(staging),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "HOME": str(tmp_path),
    }
    argv = ["deploy", "bot", "--target", "staging", "--version", "1.0.0", "--no-gate", "--yes"]
    done = CliRunner().invoke(cli, argv, env=environ)
    header = done.output.splitlines()[0]
    assert header == "deploy bot 1.0.0 -> staging (ssh://ops@127.0.0.1:1 (proxy), ssh://ops@127.0.0.2:1)", done.output
    assert done.exit_code != 0
