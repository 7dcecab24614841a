"""The wheel runs: built with `pip wheel`, installed (not editable) into a fresh venv, served with
`python -m app` from a folder that is not the checkout.

The fresh venv takes the dependencies from this venv through a `.pth` file, so nothing is
downloaded (torch alone is gigabytes); the wheel is built with this venv's hatchling
(`--no-build-isolation`) for the same reason. About 20 s, half of it the server importing torch.
"""

import json
import os
import re
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.web.assets import load_assets
from bench.server import Server

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["/", "/upload", "/sandbox", "/train", "/model", "/docs"]

pytestmark = pytest.mark.wheel


@dataclass
class Installed:
    python: Path
    site: Path
    wheel: Path
    run_dir: Path
    env: dict[str, str]


def _run(*command: str | Path, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    tmp = tmp_path_factory.mktemp("wheel")
    # Nothing of the checkout on the path: no PYTHONPATH, no APP_* settings (the shipped weights).
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME") and not k.startswith("APP_")
    }
    pip = (sys.executable, "-m", "pip", "-q", "--disable-pip-version-check")
    _run(
        *pip,
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        tmp / "dist",
        ROOT,
        cwd=tmp,
        env=env,
    )
    (wheel,) = (tmp / "dist").glob("*.whl")

    venv = tmp / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp, env=env)
    python = venv / "bin" / "python"
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(_run(python, "-c", where, cwd=tmp, env=env).strip())
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "project-deps.pth").write_text("\n".join(sorted(ours)) + "\n")
    # pip comes through the .pth too; --ignore-installed leaves this venv's editable install alone.
    install = ("install", "--no-deps", "--no-index", "--ignore-installed", wheel)
    _run(python, *pip[1:], *install, cwd=tmp, env=env)
    run_dir = tmp / "elsewhere"
    run_dir.mkdir()
    return Installed(python, site, wheel, run_dir, env)


class InstalledServer(Server):
    """bench.server's Server, running `python -m app` of the fresh venv in another folder."""

    def __init__(self, installed: Installed) -> None:
        super().__init__("app", cwd=installed.run_dir)
        self.env = installed.env
        self.python = installed.python

    def command(self) -> list[str]:
        return [str(self.python), "-m", "app", "--port", str(self.port)]


@pytest.fixture(scope="module")
def server(installed: Installed) -> Iterator[str]:
    with InstalledServer(installed) as running:
        yield running.url


def test_wheel_carries_templates_static_weights_and_subsets(installed: Installed) -> None:
    import zipfile

    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for folder in ("templates", "static"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file():
                assert f"app/{path.relative_to(ROOT).as_posix()}" in names
    for path in (ROOT / "app" / "weights").glob("cifar_net.*"):
        if path.suffix != ".html":  # the training report is not shipped
            assert f"app/weights/{path.name}" in names
    for path in (ROOT / "app" / "training" / "subsets").iterdir():  # the CIFAR-10 subsets
        assert f"app/training/subsets/{path.name}" in names


def test_the_installed_app_is_the_wheels(installed: Installed) -> None:
    code = (
        "import json, app, app.web.assets as a, app.web.settings as s; "
        "print(json.dumps([app.__file__, str(a.STATIC_DIR), str(a.TEMPLATES_DIR), "
        "str(s.DEFAULT_WEIGHTS)]))"
    )
    paths = json.loads(_run(installed.python, "-c", code, cwd=installed.run_dir, env=installed.env))
    for path in paths:
        assert Path(path).resolve().is_relative_to(installed.site.resolve()), path
        assert not Path(path).resolve().is_relative_to(ROOT), path


def test_the_installed_app_serves_every_page(server: str) -> None:
    for page in PAGES:
        r = httpx.get(server + page, headers={"Accept": "text/html"}, timeout=30)
        assert r.status_code == 200, (page, r.status_code, r.text[:300])
        assert r.headers["content-type"].startswith("text/html"), page
        assert "<html" in r.text.lower(), page
    assert httpx.get(server + "/health", timeout=30).status_code == 200
    assert httpx.get(server + "/openapi.json", timeout=30).json()["paths"]
    # The compiled catalogues came along.
    chinese = httpx.get(server + "/?lang=zh-CN", headers={"Accept": "text/html"}, timeout=30)
    assert "交叉熵图解" in chinese.text


def test_the_installed_app_serves_assets_and_weights(server: str) -> None:
    home = httpx.get(server + "/", headers={"Accept": "text/html"}, timeout=30).text
    urls = re.findall(r'(?:src|href)="(/static/[^"?]+)\?v=[0-9a-f]+"', home)
    assert urls, "no hashed static URL on /"
    checkout = load_assets(ROOT / "static")
    for url in urls:
        r = httpx.get(server + url, headers={"Accept-Encoding": "identity"}, timeout=30)
        assert r.status_code == 200, url
        # The file's bytes, but for modules, whose imports are linked to hashed URLs.
        assert r.content == checkout[url.removeprefix("/static/")].body, url
    shipped = json.loads((ROOT / "app" / "weights" / "cifar_net.json").read_text())
    info = httpx.get(server + "/model", headers={"Accept": "application/json"}, timeout=30).json()
    assert info["metrics"]["test_accuracy"] == shipped["test_accuracy"]
