"""Pictures show in a fresh notebook kernel, with no pyplot import and no %matplotlib line first."""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

TOPOLOGY = "graph g { p0 [ip=\"10.0.0.1\", cpu=4]; sw; p0 -- sw [bandwidth=1000000000]; }"
VNODES = {"a": {"vifaces": [{"name": "if0", "vnetwork": "n", "output": {"bandwidth": {"rate": "10mbps"}}}]}}


def test_drawings_display_as_images_in_a_fresh_kernel(tmp_path):
    cells = [new_code_cell("from distem.platform.placement import plot_physical_topology, plot_virtual_topology"),
             new_code_cell(f"plot_virtual_topology({VNODES!r})"),
             new_code_cell(f"plot_physical_topology({TOPOLOGY!r})")]
    notebook = new_notebook(cells=cells)
    NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    for cell in cells[1:]:
        kinds = [set(o.get("data", {})) for o in cell.outputs if o.get("output_type") == "execute_result"]
        assert kinds and "image/png" in kinds[0], cell.outputs


def test_the_latency_heatmaps_display_once(tmp_path):
    cell = new_code_cell("from distem.testing.fake import fake_platform\np = fake_platform(['a'])\n"
                         "p.vnetwork('vnet', '10.144.0.0/24')\np.plot_latencies()")
    notebook = new_notebook(cells=[cell])
    NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    images = [o for o in cell.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1, cell.outputs  # pyplot's figure was shown twice: as the value, and by the backend


def test_progress_bars_leave_a_line_and_no_widget(tmp_path):
    """While it runs a bar is a widget; when done it is replaced by one line of text, so that a saved
    notebook holds no widget (reopened, each showed "Error displaying widget: model not found")."""
    image = tmp_path / "image.tar"
    image.write_bytes(b"fake")
    cell = new_code_cell("from distem.testing.fake import fake_platform\n"
                         "p = fake_platform(['a'], progress=True)\np.vnetwork('vnet', '10.144.0.0/24')\n"
                         f"for i in range(3):\n    p.vnode(f'n{{i}}').image({str(image)!r}).iface('if0', 'vnet')\n"
                         "p.deploy();")
    lines = _text_left(cell, tmp_path)
    assert any(line.startswith("Creating vnodes: ") and " ops in " in line for line in lines), cell.outputs


def test_a_bar_whose_total_comes_later_leaves_a_line_with_its_stage(tmp_path):
    """An image build's bar: no total until debootstrap has retrieved all, a stage after the count."""
    cell = new_code_cell("from distem.platform.progress import Progress\n"
                         "with Progress('debootstrap bookworm', None, True, unit='step') as bar:\n"
                         "    bar.count(2, None, 'retrieving libc6')\n"
                         "    bar.count(5, 6, 'configuring libc6')\n")
    lines = _text_left(cell, tmp_path)
    assert any(line.startswith("debootstrap bookworm: 5/6 steps in ") and line.endswith(" s (configuring libc6)")
               for line in lines), cell.outputs


def _text_left(cell, tmp_path) -> list[str]:
    """Run the cell in a fresh kernel: the text it leaves, checked to hold no widget."""
    NotebookClient(new_notebook(cells=[cell]), timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    kinds = [kind for o in cell.outputs for kind in o.get("data", {})]
    assert "application/vnd.jupyter.widget-view+json" not in kinds, cell.outputs
    return [o["data"]["text/plain"] for o in cell.outputs if "text/plain" in o.get("data", {})]


def test_the_virtual_topology_writes_each_links_limits():
    from distem.platform.placement import plot_virtual_topology

    texts = [t.get_text() for t in plot_virtual_topology(VNODES).axes[0].texts]
    assert "out 10mbit" in texts and "n" in texts and "a\n1 core\n10 Mbit/s out" in texts  # link, hub, vnode
