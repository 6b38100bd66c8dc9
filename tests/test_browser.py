"""JupyterLab in a real browser: the notebooks with widget explorers (and one plain notebook, as a
smoke test of JupyterLab itself) run clean, and every explorer reacts to every control.

nbval already executes every notebook once; running all of them again here would double the
suite's time without testing anything nbval does not, except the widgets and the browser.

Starts ``jupyter lab`` on 127.0.0.1 (free port, token; settings, workspaces and runtime files in a
temporary folder) and drives Debian's Chromium with Playwright -- no browser download.
Screenshots land in build/browser/. Install the browser with ``make chromium``.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "build" / "browser"
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
EXPLORER = re.compile(r"\bfl\.widgets\.\w+\(|\binteract(ive)?\(")  # a code cell showing a widget


def code_cells(name: str) -> list[str]:
    cells = json.loads((ROOT / "notebooks" / name).read_text())["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


EXPLORERS = [n for n in NOTEBOOKS if any(EXPLORER.search(s) for s in code_cells(n))]
SMOKE = NOTEBOOKS[0]  # a notebook without widgets: JupyterLab opens and runs it
IN_BROWSER = sorted(set(EXPLORERS) | {SMOKE})

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Chromium not installed: run `make chromium` (as root: apt-get install chromium fonts-noto-cjk)")
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -c constraints.txt -e '.[test]'")

# User settings for the run: no news toast, no autosave (the committed notebooks stay as they are),
# every cell in the DOM (no windowing), so widgets render wherever they are.
SETTINGS = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/docmanager-extension:plugin": {"autosave": False},
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
}

# True once every code cell has run (or one failed) and the kernel is idle again.
FINISHED = """() => {
    const nb = jupyterapp.shell.currentWidget;
    const cells = nb.context.model.toJSON().cells.filter(c => c.cell_type === 'code' && c.source.trim());
    const failed = cells.some(c => c.outputs.some(o => o.output_type === 'error'));
    const done = cells.every(c => c.execution_count !== null);
    return (done || failed) && nb.sessionContext.session?.kernel?.status === 'idle';
}"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on the repository; yields the base URL and the token."""
    tmp = tmp_path_factory.mktemp("lab")
    for plugin, values in SETTINGS.items():
        f = tmp / "settings" / f"{plugin.replace(':', '/')}.jupyterlab-settings"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(values))
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the kernel draws inline
    env["OMP_NUM_THREADS"] = "1"  # one thread per kernel: the notebooks run side by side (fixture pages)
    env.update(JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
               JUPYTER_DATA_DIR=str(tmp / "data"), IPYTHONDIR=str(tmp / "ipython"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_hex(16)
    cmd = [str(ROOT / ".venv" / "bin" / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--ServerApp.token={token}", f"--ServerApp.root_dir={ROOT}",
           "--LabApp.expose_app_in_browser=True"] + (["--allow-root"] if os.getuid() == 0 else [])
    log = tmp / "server.log"
    with open(log, "w") as out:
        server = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            if server.poll() is not None:
                pytest.fail(f"jupyter lab exited:\n{log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"jupyter lab did not answer within 120 s:\n{log.read_text()[-3000:]}")
        yield url, token
    finally:
        server.terminate()  # also shuts down the kernels
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chromium")  # its profile and caches, instead of ~/.cache, ~/.config
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp / "cache"), XDG_CONFIG_HOME=str(tmp / "config"))
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), env=env)
        yield chromium
        chromium.close()


def _open_and_run_all(browser, url, token, name):
    """A new page with notebook ``name`` open, its outputs cleared and "Run All" started."""
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(120_000)
    # a workspace of its own, so the page opens this notebook only
    page.goto(f"{url}/lab/workspaces/{name[:2]}/tree/notebooks/{name}?token={token}")
    # a kernel starts, or (no kernelspec metadata) a dialog asks for one: take its default
    page.wait_for_function("() => window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel"
                           " || document.querySelector('.jp-Dialog')")
    if page.locator(".jp-Dialog").count():
        page.locator(".jp-Dialog .jp-mod-accept").click()
    page.evaluate("""async () => {
        const nb = jupyterapp.shell.currentWidget;
        await nb.context.ready;
        await nb.sessionContext.ready;
        jupyterapp.shell.collapseLeft();
        await jupyterapp.commands.execute('notebook:clear-all-cell-outputs');
        jupyterapp.commands.execute('notebook:run-all-cells');
    }""")
    return page


@pytest.fixture(scope="module")
def pages(lab, browser):
    """Every notebook of IN_BROWSER open in a page of its own and run top to bottom, all of them at
    once (each kernel also waits on the browser and on its imports, so side by side they take half
    the time of one after another); yields {name: page}."""
    url, token = lab
    SHOTS.mkdir(parents=True, exist_ok=True)
    # the later notebooks take longer (the capstone most): start them first
    opened = {name: _open_and_run_all(browser, url, token, name) for name in reversed(IN_BROWSER)}
    for name, page in opened.items():
        try:
            page.wait_for_function(FINISHED, timeout=600_000, polling=1000)
        except sync_api.TimeoutError:
            pytest.fail(f"{name} did not finish running in JupyterLab within 600 s", pytrace=False)
    yield opened
    for page in opened.values():  # the lab fixture's server takes the kernels down with it
        page.close()


@pytest.fixture
def notebook(request, pages):
    """The page of notebook ``request.param``, run top to bottom (once, for all its tests)."""
    page = pages[request.param]
    page.bring_to_front()
    return page


def test_the_widget_notebooks_are_found():
    """If the pattern stopped matching, the explorer test would silently test nothing."""
    assert len(EXPLORERS) >= 2, EXPLORERS


@pytest.mark.parametrize("notebook", IN_BROWSER, indirect=True)
def test_notebook_runs_in_jupyterlab(notebook, request):
    name = request.node.callspec.params["notebook"]
    notebook.locator(".jp-CodeCell").last.scroll_into_view_if_needed()  # its count shows it ran
    notebook.screenshot(path=SHOTS / f"{name[:2]}.png")
    model = notebook.evaluate("() => jupyterapp.shell.currentWidget.context.model.toJSON()")
    cells = [c for c in model["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    errors = [f"code cell {i}: " + re.sub(r"\x1b\[[\d;]*m", "", "\n".join(o["traceback"]))  # without colours
              for i, c in enumerate(cells) for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors, "\n\n".join(errors)
    # a fresh kernel ran every cell once, in order
    assert [c["execution_count"] for c in cells] == list(range(1, len(cells) + 1))


def test_every_notebook_names_its_kernel():
    """Without kernelspec metadata JupyterLab asks for a kernel in a dialog instead of starting one."""
    missing = [n for n in NOTEBOOKS
               if not json.loads((ROOT / "notebooks" / n).read_text())["metadata"].get("kernelspec")]
    assert not missing, f"no kernelspec metadata in {missing}: open, pick 'Python 3', save"


@pytest.mark.parametrize("notebook", EXPLORERS, indirect=True)
def test_widget_explorer_reacts(notebook, request):
    """Each explorer renders as widgets; changing any control redraws its picture."""
    name = request.node.callspec.params["notebook"]
    expected = sum(bool(EXPLORER.search(s)) for s in code_cells(name))
    boxes = notebook.locator(".jp-Cell .jp-OutputArea-output > .widget-vbox")
    sync_api.expect(boxes, f"{expected} explorer(s) should render as widgets, not as text").to_have_count(
        expected, timeout=30_000)
    for b, box in enumerate(boxes.all()):
        box.scroll_into_view_if_needed()
        img = box.locator(".widget-output img")
        sync_api.expect(img).to_be_visible(timeout=30_000)
        controls = box.locator("select").all() + box.locator(".noUi-handle").all()
        assert controls, "an explorer without a dropdown or slider"
        for control in controls:
            before = img.get_attribute("src")
            if control.evaluate("e => e.tagName") == "SELECT":  # pick another option
                control.select_option(index=int(control.evaluate("e => e.selectedIndex") == 0))
            else:
                control.focus()
                control.press("ArrowRight")
            try:
                sync_api.expect(img).not_to_have_attribute("src", before, timeout=60_000)
            except AssertionError:
                label = control.evaluate("e => e.closest('.widget-inline-hbox').querySelector('label')"
                                         ".innerText")
                pytest.fail(f"explorer {b}: changing {label or 'a control'} did not redraw its picture",
                            pytrace=False)
        box.screenshot(path=SHOTS / f"{name[:2]}_widget{b}.png")


UPLOADERS = [n for n in EXPLORERS if any("search_explorer(" in s for s in code_cells(n))]


@pytest.mark.parametrize("notebook", UPLOADERS, indirect=True)
def test_search_explorer_takes_an_uploaded_picture(notebook, request, tmp_path):
    """Uploading a picture makes it the query: the dropdown shows it and the grid redraws."""
    from skimage import data
    from PIL import Image

    name = request.node.callspec.params["notebook"]
    picture = tmp_path / "my_photo.png"
    Image.fromarray(data.astronaut()).resize((256, 256)).save(picture)
    box = notebook.locator(".jp-Cell .jp-OutputArea-output > .widget-vbox").filter(
        has=notebook.locator(".widget-upload")).first
    box.scroll_into_view_if_needed()
    img = box.locator(".widget-output img")
    sync_api.expect(img).to_be_visible(timeout=30_000)
    before = img.get_attribute("src")
    with notebook.expect_file_chooser() as chooser:  # the widget's <input type=file> is not in the DOM
        box.locator(".widget-upload").click()
    chooser.value.set_files(str(picture))
    sync_api.expect(img).not_to_have_attribute("src", before, timeout=60_000)
    query = box.locator("select").first.evaluate("e => e.options[e.selectedIndex].text").replace("\xa0", " ")
    assert query == "uploaded: my_photo.png", query
    box.screenshot(path=SHOTS / f"{name[:2]}_upload.png")


def test_the_capstone_explorer_is_found():
    assert UPLOADERS, "no notebook shows fl.widgets.search_explorer: the upload test would test nothing"
