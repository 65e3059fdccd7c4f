"""Layer 3, the agent: the code that runs on each pnode, as root.

It is sent through the execnet gateway as source (see ``bootstrap``), so every
module here imports only the standard library, pyroute2, lxc and its siblings
(relatively) — never anything else from ``distem``.

    server      the channel protocol: handshake, dispatch table, errors, progress
    journal     what the platform created on this pnode, on disk, for undo and clean
    undo        how each kind of journalled resource is removed; ``clean``
    apply       executes plan operations (journalling first), rolls back on failure
    links       bridges and links through netlink (pyroute2)
    cgroups     finding hierarchies, removing a platform's subtree
    containers  LXC containers: start, stop, freeze, state, execute
    facts       what this pnode has (kernel, cgroups, cores, memory)
    measure     fping from inside vnodes' network namespaces
    routing     IPv4 forwarding and routes inside running vnodes' network namespaces
    system      running the few system commands (argv lists) and mount checks
    delayline   the userspace delay line (NFQUEUE), a program of its own: delay, jitter, loss without netem
    userspace   the agent's side of it: starting the process, its iptables rules, sending settings
    iptables    the rules (argv lists), in a chain per platform jumped to from FORWARD
"""
