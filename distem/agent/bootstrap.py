"""The module execnet runs on a pnode: it installs the agent's sources as a package, then serves.

Only this file's source crosses the gateway through ``remote_exec``; it then
receives ``(package_name, {module_name: source})`` on the channel and imports
the agent from memory, so a pnode needs no copy of distem — only Python,
pyroute2 and the lxc bindings.
"""


def main(channel):  # type: ignore[no-untyped-def]
    import importlib.abc
    import importlib.util
    import linecache
    import sys

    package, sources = channel.receive()

    class SourceLoader(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, fullname, path, target=None):  # type: ignore[no-untyped-def]
            if fullname not in sources:
                return None
            return importlib.util.spec_from_loader(fullname, self, is_package=fullname == package)

        def create_module(self, spec):  # type: ignore[no-untyped-def]
            return None

        def exec_module(self, module):  # type: ignore[no-untyped-def]
            source = sources[module.__name__]
            filename = f"<{module.__name__.replace('.', '/')}.py>"
            # Tracebacks from the agent then show source lines.
            linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
            exec(compile(source, filename, "exec"), module.__dict__)

    sys.meta_path.insert(0, SourceLoader())
    importlib.import_module(package + ".server").serve(channel)


if __name__ == "__channelexec__":
    main(channel)  # type: ignore[name-defined]  # noqa: F821
