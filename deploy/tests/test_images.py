"""The Dockerfiles, checked without a Docker engine.

Statically: multi-stage, installed by uv from the lock file, a non-root numeric user, no
build tools in the final stage, and every file they copy allowed by .dockerignore.

By simulation: each Dockerfile's own COPY and ``uv sync`` instructions are replayed into
a temporary folder (the build stage), the final stage gets only what its
``COPY --from=build`` lines take, and the service's console script must then migrate a
database and build its API and its broker from that folder alone, outside the
workspace. That is what the image would run; only the base image is not involved.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from deploy_support import ROOT, SERVICES, uv_binary

BUILD_TOOLS = ("gcc", "build-essential", "make", "git", "curl", "wget")


@dataclass
class Stage:
    """One ``FROM`` block of a Dockerfile, continuation lines joined."""

    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, op: str) -> list[str]:
        return [arg for o, arg in self.instructions if o == op]


def stages(dockerfile: Path) -> list[Stage]:
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    out: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        op, _, arg = line.partition(" ")
        op = op.upper()
        if op == "FROM":
            base, _, name = arg.partition(" AS ")
            out.append(Stage(name.strip(), base.strip()))
        elif out:
            out[-1].instructions.append((op, arg.strip()))
    return out


def dockerignore_allows(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; ``!`` re-includes."""
    allowed = True
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        pat = pattern.replace("**/", "*")
        if any(fnmatch.fnmatchcase(p, pat) for p in prefixes):
            allowed = negate
    return allowed


def dockerfile(service: str) -> Path:
    return ROOT / "services" / service / "Dockerfile"


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_shape(service: str) -> None:
    build, final = stages(dockerfile(service))
    assert (build.name, final.name) == ("build", "runtime")
    assert build.base == final.base
    assert ":" in build.base
    assert not build.base.endswith(":latest")
    syncs = [r for r in build.all("RUN") if "uv sync" in r]
    assert len(syncs) == 2
    for run in syncs:
        assert "--frozen" in run
        assert "--no-dev" in run
        assert f"--package cairn-{service}" in run
    assert "--no-install-workspace" in syncs[0], "dependencies get their own cached layer"
    # The final stage: a non-root numeric user, the service's console script, no uv/pip.
    (user,) = final.all("USER")
    uid = user.split(":")[0]
    assert uid.isdigit()
    assert int(uid) >= 10000
    assert final.all("ENTRYPOINT") == [f'["cairn-{service}"]']
    assert final.all("CMD") == ['["api"]']
    for run in final.all("RUN"):
        assert "uv" not in shlex.split(run), run
        assert "apt-get install" not in run, run
        assert not any(tool in run for tool in BUILD_TOOLS), run
    for copy in final.all("COPY"):
        assert copy.startswith("--from=build "), f"the final stage copies only built files: {copy}"
    # Bytecode compiled at build time and none written at run time: read-only root works.
    assert any("compileall" in r for r in build.all("RUN"))
    assert "PYTHONDONTWRITEBYTECODE=1" in " ".join(final.all("ENV"))


@pytest.mark.parametrize("service", SERVICES)
def test_dockerignore_lets_through_what_the_build_copies(service: str) -> None:
    build = stages(dockerfile(service))[0]
    for copy in build.all("COPY"):
        *sources, _ = shlex.split(copy)
        for source in sources:
            assert (ROOT / source).exists(), f"{service}: COPY {source}: no such path"
            assert dockerignore_allows(source), f"{service}: .dockerignore excludes {source}"
    for private in (".git", ".venv", ".data", "services/payments/tests", "docs"):
        assert not dockerignore_allows(private), private


def replay(service: str, workdir: Path) -> Path:
    """Replay the Dockerfile's COPY and ``uv sync`` steps; returns the final stage's /app."""
    build, final = stages(dockerfile(service))
    app = workdir / "app"
    app.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    for op, arg in build.instructions:
        if op == "ENV":
            for assignment in shlex.split(arg):
                key, _, value = assignment.partition("=")
                env[key] = value.replace("/app", str(app))
            # Compiling every installed module to bytecode changes nothing this test
            # looks at and costs most of its time; the static test checks it is asked for.
            env["UV_COMPILE_BYTECODE"] = "0"
            # In the image, uv copies from a cache on another filesystem. Here the cache is
            # on this one, and hard links give the same files at the same paths without
            # writing ~110 MB per service (on a busy disk, most of this test's time). Nothing
            # writes into the environment afterwards (PYTHONDONTWRITEBYTECODE in the runs).
            env["UV_LINK_MODE"] = "hardlink"
        elif op == "COPY":
            *sources, target = shlex.split(arg)
            for source in sources:
                src = ROOT / source
                dest = app / target if not target.endswith("/") else app / target / src.name
                if target in ("./", "."):
                    dest = app / src.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                if src.is_dir():
                    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(src, dest)
        elif op == "RUN" and "uv sync" in arg:
            for command in arg.split("&&"):
                argv = shlex.split(command)
                if argv[:2] == ["uv", "sync"]:
                    argv[0] = uv_binary()
                elif argv[:3] == ["python", "-m", "compileall"]:
                    argv[0] = str(app / ".venv" / "bin" / "python")
                result = subprocess.run(
                    argv, cwd=app, env=env, capture_output=True, text=True, check=False
                )
                assert result.returncode == 0, f"{command}\n{result.stderr}"
    # The final stage holds only what it copies from the build stage, at the same paths.
    # Each COPY --from=build is a move: the build stage is thrown away anyway, and moving
    # gives the same tree without copying it (what is not taken stays behind).
    built = workdir / "build"
    app.rename(built)
    for copy in final.all("COPY"):
        _, source, target = shlex.split(copy)
        dest = app / target.removeprefix("/app/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        (built / source.removeprefix("/app/")).rename(dest)
    built.rename(workdir / "build-stage-discarded")
    return app


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_layout_runs_each_role(service: str, tmp_path: Path) -> None:
    app = replay(service, tmp_path)
    shutil.rmtree(tmp_path / "build-stage-discarded")
    final = stages(dockerfile(service))[1]
    env = {"PATH": f"{app / '.venv' / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    for assignment in shlex.split(" ".join(final.all("ENV"))):
        key, _, value = assignment.partition("=")
        if key != "PATH":
            env[key] = value
    prefix = service.upper()
    env[f"{prefix}_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    env["CAIRN_JWT_SECRET"] = "a-secret-from-the-cairn-jwt-secret"
    script = app / ".venv" / "bin" / f"cairn-{service}"
    # The image has bytecode for every module (compiled at build time) and writes none.
    # Here the build's compilation is skipped (see replay), so the first role compiles what
    # it imports into a cache *outside* /app and the other two load it from there, instead
    # of each compiling the whole service again; /app stays untouched (checked below).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path / "pycache")
    before = {p: p.stat().st_size for p in app.rglob("*")}
    # Run from an empty folder, as the image's non-root user would: nothing of the
    # workspace is reachable except what the final stage copied.
    cwd = tmp_path / "empty"
    cwd.mkdir()

    def start(role: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(script), role],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(role: str, proc: subprocess.Popen[str]) -> str:
        try:
            out, err = proc.communicate(timeout=120)
        finally:
            proc.kill()
        assert proc.returncode == 0, f"cairn-{service} {role}:\n{err[-4000:]}"
        return out

    finish("migrate", start("migrate"))
    # The two read-only roles need nothing from each other: they run side by side.
    documents = {role: start(role) for role in ("openapi", "asyncapi")}
    printed = {role: finish(role, proc) for role, proc in documents.items()}
    assert (tmp_path / "db.sqlite").stat().st_size > 0
    assert json.loads(printed["openapi"])["openapi"].startswith("3.")
    assert json.loads(printed["asyncapi"])["asyncapi"]
    after = {p: p.stat().st_size for p in app.rglob("*")}
    assert after == before, "running the roles wrote into the image's files"
