"""Fixtures: one demo chain (anvil + traffic) and one server per test module,
plus factories for tests that need their own."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from sluice_harness import Anvil, Server  # noqa: E402


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """An anvil node holding 40 blocks of demo traffic (ERC-20, ERC-721, ETH, failures)."""
    tmp = tmp_path_factory.mktemp("chain")
    node = Anvil(tmp)
    node.traffic(blocks=40)
    yield node
    node.stop()


@pytest.fixture(scope="module")
def server(chain, tmp_path_factory):
    """A sluice server that has extracted the whole `chain`."""
    tmp = tmp_path_factory.mktemp("server")
    srv = Server(tmp / "data", chain.url)
    srv.wait_head(chain.head())
    yield srv
    srv.stop()


@pytest.fixture
def make_anvil(tmp_path):
    nodes = []

    def make(**kw):
        node = Anvil(tmp_path, **kw)
        nodes.append(node)
        return node

    yield make
    for n in nodes:
        n.stop()


@pytest.fixture
def make_server(tmp_path):
    servers = []

    def make(data_dir, rpc_url, *extra, **kw):
        srv = Server(Path(data_dir), rpc_url, *extra, **kw)
        servers.append(srv)
        return srv

    yield make
    for s in servers:
        s.stop()
