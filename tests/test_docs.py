"""The documentation a notebook user reads with help(): each of Distem's calls carries an example that
parses and calls it; the class itself opens with one."""

from __future__ import annotations

import ast
import inspect
import textwrap

import pytest

from distem import Platform

DISTEM_CALLS = """
vnetwork_create vnetwork_remove vnetworks_remove vnetwork_info vnetworks_info
vnode_create vnodes_create vnode_start vnodes_start vnode_stop vnodes_stop vnode_freeze vnodes_freeze
vnode_unfreeze vnodes_unfreeze vnode_remove vnodes_remove vnode_info vnodes_info vnode_update vnode_mode
vnode_execute vnodes_execute wait_vnodes viface_info viface_update vinput_update voutput_update vinput_info
voutput_info set_peers_latencies vcpu_create vcpu_update vcpu_remove vcpu_info vmem_create vmem_update
vmem_remove vmem_info vfilesystem_update vfilesystem_info vroute_create vroute_complete load_physical_topo
run_alevin vnodes_to_dot event_trace_add event_trace_string_add event_trace_file_add event_random_add
event_manager_start event_manager_stop pnodes_launch_probes pnodes_get_probes_data pnodes_stop_probes
pnodes_restart_probes pnodes_delete_probes vplatform_info vplatform_create set_global_etchosts set_global_arptable
viface_create viface_remove vfilesystem_image vnodes_update
""".split()


@pytest.mark.parametrize("name", DISTEM_CALLS)
def test_each_distem_call_has_an_example(name):
    doc = inspect.getdoc(getattr(Platform, name))
    assert doc and "Example::" in doc, f"{name} has no example"
    example = textwrap.dedent(doc.split("Example::", 1)[1]).strip()
    ast.parse(example)
    assert f"p.{name}(" in example


def test_help_opens_with_an_example():
    doc = inspect.getdoc(Platform)
    assert doc.index("Example::") < doc.index("Args:")
    ast.parse(textwrap.dedent(doc.split("Example::", 1)[1].split("Distem's calls", 1)[0]).strip())
