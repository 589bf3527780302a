# SPDX-License-Identifier: AGPL-3.0-only
import os
import shutil

import pytest

from lab import AGENT, Agent, Lab


def pytest_configure(config):
    if os.geteuid() != 0:
        pytest.exit("end-to-end tests need root (network namespaces, BPF)", returncode=1)
    if not os.path.exists(AGENT):
        pytest.exit(f"{AGENT} not built: run make", returncode=1)


@pytest.fixture
def lab():
    """Two namespaces, `agent` and `peer`, joined by a veth pair."""
    lb = Lab()
    try:
        lb.agent_ns = lb.netns()
        lb.peer_ns = lb.netns()
        lb.agent_if, lb.peer_if = lb.link(lb.agent_ns, lb.peer_ns,
                                          "198.51.100.1/24", "198.51.100.2/24",
                                          "2001:db8:1::1/64", "2001:db8:1::2/64")
        yield lb
    finally:
        lb.close()


def _agent_factory(ns, interfaces, tmp_path):
    agents = []

    def make(extra_yaml="", agent_yaml="", **kw):
        d = tmp_path / f"agent{len(agents)}"
        d.mkdir()
        a = Agent(ns, str(d), interfaces, extra_yaml=extra_yaml, agent_yaml=agent_yaml, **kw)
        agents.append(a)
        return a

    return make, agents


@pytest.fixture
def make_agent(lab, tmp_path):
    """Factory for agents on the lab's agent-side veth; all cleaned up."""
    make, agents = _agent_factory(lab.agent_ns, [lab.agent_if], tmp_path)
    yield make
    for a in agents:
        a.cleanup()


@pytest.fixture
def router():
    """Three namespaces: client — router — server (Lab.router_topology)."""
    lb = Lab()
    try:
        yield lb.router_topology()
    finally:
        lb.close()


@pytest.fixture
def make_router_agent(router, tmp_path):
    """Factory for agents on the router, attached to both of its veths."""
    make, agents = _agent_factory(router.router, [router.r_cif, router.r_sif], tmp_path)
    yield make
    for a in agents:
        a.cleanup()


@pytest.fixture
def agent(make_agent):
    return make_agent().start()


def need(tool):
    if not shutil.which(tool):
        pytest.skip(f"{tool} not installed (run make deps)")
