"""Installs clients/python into a fresh venv the way a user does, for the client tests.

  install_client.py SOURCE_DIR VENV_DIR

The venv sees Debian's packages (--system-site-packages: setuptools and wheel for the
build, requests for the tests); pip builds with --no-build-isolation and --no-index, so
nothing is fetched. The source is copied first, so the build leaves nothing in the tree
and two builds never share a build directory. Fails (exit 1) when the installed package
does not import from the venv or lacks its py.typed marker.
"""

import os
import shutil
import subprocess
import sys
import tempfile


def main():
    source, venv = sys.argv[1], sys.argv[2]
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", venv],
                   check=True)
    python = os.path.join(venv, "bin", "python")
    with tempfile.TemporaryDirectory(prefix="speedmon-client-src-") as tmp:
        copy = os.path.join(tmp, "python")
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns(
            "build", "*.egg-info", "__pycache__"))
        subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-build-isolation",
                        "--no-index", "--no-cache-dir", "--disable-pip-version-check", copy],
                       check=True)
    check = ("import os, speedmon_client as m; d = os.path.realpath(os.path.dirname(m.__file__)); "
             "print(d); assert d.startswith(os.path.realpath(os.environ['VENV'])), d; "
             "assert os.path.isfile(os.path.join(d, 'py.typed'))")
    env = dict(os.environ, VENV=venv)
    subprocess.run([python, "-I", "-c", check], check=True, env=env, cwd="/")
    print(f"speedmon-client installed in {venv}")


if __name__ == "__main__":
    main()
