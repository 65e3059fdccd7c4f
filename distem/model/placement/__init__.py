"""Placing vnodes on pnodes under CPU, memory and bandwidth constraints: Distem's Alevin mapping, in-library.

Pure: no file and no pnode is touched here.

    topology   the physical topology as a validated networkx graph (from a graph, YAML data, the pnodes' facts)
    dot        Distem's DOT text: physical topology in, virtual topology out
    demand     what each vnode needs: cores, memory, output rates per vnetwork
    problem    an instance, the traffic model, and the check of a mapping
    greedy     the fast deterministic heuristic
    exact      the optimal CP-SAT model, for small instances
    solve      ``place()``: either, and MappingError when nothing fits
    vnode_list the seed's ``vnodes_list.yml`` entries as Distem descriptions
"""

from .demand import Demand, demand_of_request, demand_of_vnode, request_for_placement
from .dot import topology_from_dot, vnodes_dot
from .problem import Problem, Usage, Violation, evaluate
from .solve import EXACT_LIMIT, Placement, place, place_descriptions
from .topology import (DEFAULT_LINK_BPS, bind_topology, physical_topology, star_topology, topology_from_data,
                       topology_hosts)
from .vnode_list import vnodes_from_list

__all__ = [
    "Demand", "demand_of_request", "demand_of_vnode", "request_for_placement", "topology_from_dot", "vnodes_dot",
    "Problem", "Usage", "Violation", "evaluate", "EXACT_LIMIT", "Placement", "place", "place_descriptions",
    "vnodes_from_list", "DEFAULT_LINK_BPS", "bind_topology", "physical_topology", "star_topology",
    "topology_from_data", "topology_hosts",
]
