#!/bin/sh
# bentofile.yaml docker.setup_script: runs as root in the image build, after the Python packages are installed.
# Removes what only installing needed. The space comes back where the build squashes its layers
# (deploy/image.py passes --squash to podman); with a layered build it only hides the files.
set -eu

# SQLAlchemy's compiled extensions ship with their debug symbols (9 MB, 1 MB without): stripped while binutils,
# from build-essential, is still here.
if command -v strip >/dev/null 2>&1; then
    find /app/.venv -path '*/site-packages/sqlalchemy/*.so' -exec strip --strip-unneeded {} +
fi

# Compilers, git and gnupg (BentoML's default apt step): every Python package here is a wheel.
if command -v apt-get >/dev/null 2>&1; then
    # what only those pulled in goes too (apt would keep what an installed package merely recommends or suggests)
    apt-get purge -y -q --auto-remove -o APT::AutoRemove::RecommendsImportant=false \
        -o APT::AutoRemove::SuggestsImportant=false build-essential git gnupg2 >/dev/null
    apt-get clean
    rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log
fi

# uv and its cache installed the virtual environment; the image does not install anything later.
# (`pip` is the base image's: the virtual environment has none)
if command -v uv >/dev/null 2>&1; then pip uninstall -y -q uv; fi
rm -rf /root/.cache /tmp/*

# torch's C++ headers, C++ test binaries and protoc (native image only): for building extensions and testing torch.
if /app/.venv/bin/python -c 'import importlib.util as u, sys; sys.exit(u.find_spec("torch") is None)'; then
    torch_dir=$(/app/.venv/bin/python -c 'import os, importlib.util as u; print(os.path.dirname(u.find_spec("torch").origin))')
    rm -rf "$torch_dir/include" "$torch_dir/test" "$torch_dir"/bin/test_* "$torch_dir"/bin/*Test "$torch_dir"/bin/protoc*
    /app/.venv/bin/python -c 'import torch; torch.nn.Linear(2, 1)(torch.zeros(1, 2))'
fi
