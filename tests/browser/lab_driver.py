"""Drive one JupyterLab tab the way a learner does: open a notebook, Run All from the
menu, click widgets; read what happened from the page (and, to be exact about cell
outputs, from the notebook model JupyterLab exposes with --LabApp.expose_app_in_browser).

Every wait is on a DOM or model condition with a bounded timeout; no sleeps.
"""
import re
import uuid

# The notebook panel showing `path` (JupyterLab keeps one per open document).
_PANEL = """const panel = Array.from(window.jupyterapp.shell.widgets('main'))
    .find(w => w.context && w.context.path === path && w.content && w.content.model);"""

_READY = """(path) => {
  const dialog = document.querySelector('.jp-Dialog');
  if (dialog) return 'dialog: ' + dialog.innerText;
  if (!window.jupyterapp || !window.jupyterapp.shell) return false;
  %s
  if (!panel || !panel.context.isReady || !panel.sessionContext.isReady) return false;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  if (!kernel || kernel.status !== 'idle') return false;
  return panel.content.node.querySelectorAll('.jp-Cell').length === panel.content.model.cells.length;
}""" % _PANEL

# Idle: the kernel is idle and no cell shows the busy prompt [*], for a full second.
_IDLE = """(path) => {
  %s
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const busy = !kernel || kernel.status !== 'idle' ||
    Array.from(panel.content.node.querySelectorAll('.jp-InputPrompt'))
      .some(p => p.textContent.includes('*'));
  if (busy) { window.__noposIdleSince = null; return false; }
  window.__noposIdleSince = window.__noposIdleSince || Date.now();
  return Date.now() - window.__noposIdleSince > 1000;
}""" % _PANEL

_STARTED = """([path, index]) => {
  %s
  const cell = panel.content.widgets[index];
  return cell.model.executionCount !== null ||
    (cell.node.querySelector('.jp-InputPrompt') || {textContent: ''}).textContent.includes('*');
}""" % _PANEL

_CELLS = """(path) => {
  %s
  return panel.content.widgets.map((cell, index) => ({
    index, type: cell.model.type,
    source: cell.model.sharedModel.getSource(),
    count: cell.model.type === 'code' ? cell.model.executionCount : null,
    outputs: cell.model.type === 'code' ? cell.model.outputs.toJSON() : [],
  }));
}""" % _PANEL

_RUN_FROM = """async ([path, index]) => {
  %s
  window.jupyterapp.shell.activateById(panel.id);
  panel.content.activeCellIndex = index;
  await window.jupyterapp.commands.execute('notebook:run-all-below');
}""" % _PANEL

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class Lab:
    def __init__(self, page, server, messages):
        self.page, self.server, self.messages = page, server, messages
        self.path = None

    # -- opening and running -------------------------------------------------------
    def open(self, path, timeout_ms=90_000):
        """Open `path` (relative to the repository root) in a fresh workspace, wait until
        its kernel is idle and every cell is drawn."""
        self.path = str(path)
        workspace = "t" + uuid.uuid4().hex[:10]
        self.page.goto(f"{self.server.url}/lab/workspaces/{workspace}/tree/{self.path}"
                       f"?reset&token={self.server.token}")
        ready = self.page.wait_for_function(_READY, arg=self.path, timeout=timeout_ms,
                                            polling=250).json_value()
        assert ready is True, f"JupyterLab could not open {self.path}: {ready}"
        self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").first.wait_for()
        self.dismiss_notifications()

    def dismiss_notifications(self):
        for button in self.page.locator(".jp-toast-button, .Toastify__close-button").all():
            try:
                button.click(timeout=2000)
            except Exception:  # a toast that closed by itself
                pass

    def run_all_from_menu(self, timeout_ms):
        """Run > Run All Cells, as a learner clicks it; waits for the kernel to finish."""
        first_code = next(c["index"] for c in self.cells() if c["type"] == "code")
        self.menu("Run", "Run All Cells")
        self._wait_started(first_code)
        self.wait_idle(timeout_ms)

    def menu(self, top, item):
        """Click a main-menu entry, then one of its items, by their labels."""
        self.page.locator(".lm-MenuBar-item", has_text=re.compile(rf"^\s*{re.escape(top)}\s*$")).click()
        self.page.locator(f".lm-Menu-item:has(.lm-Menu-itemLabel:text-is('{item}'))").click()

    def run_past_errors(self, timeout_ms):
        """JupyterLab stops Run All at the first error (the unanswered exercise); a learner
        exploring the release then runs the rest from the next cell. Repeat until every code
        cell has run once."""
        for _ in range(len(self.cells())):
            pending = [c["index"] for c in self.cells() if c["type"] == "code" and c["count"] is None]
            if not pending:
                return
            self.page.evaluate(_RUN_FROM, [self.path, pending[0]])
            self._wait_started(pending[0])
            self.wait_idle(timeout_ms)

    def _wait_started(self, index):
        self.page.wait_for_function(_STARTED, arg=[self.path, index], timeout=30_000, polling=100)

    def wait_idle(self, timeout_ms=60_000):
        self.page.wait_for_function(_IDLE, arg=self.path, timeout=timeout_ms, polling=200)

    # -- reading what happened -----------------------------------------------------
    def cells(self):
        return self.page.evaluate(_CELLS, self.path)

    def errors(self):
        """(cell index, ename, evalue) of every error output."""
        return [(c["index"], o.get("ename"), ANSI.sub("", o.get("evalue", ""))[:300])
                for c in self.cells() for o in c["outputs"] if o.get("output_type") == "error"]

    def stream_text(self, name="stdout"):
        return "".join("".join(o.get("text", "")) if isinstance(o.get("text"), list) else
                       o.get("text", "") for c in self.cells() for o in c["outputs"]
                       if o.get("output_type") == "stream" and o.get("name") == name)

    def never_ran(self):
        return [c["index"] for c in self.cells() if c["type"] == "code" and c["count"] is None
                and c["source"].strip()]

    def widget_failures(self):
        """Outputs where a widget failed to draw (missing front-end, model not found)."""
        area = self.page.locator(".jp-OutputArea-output")
        return [area.nth(i).inner_text()[:200] for i in range(area.count())
                if re.search(r"Error displaying widget|Error rendering|Loading widget",
                             area.nth(i).inner_text())]

    def images(self):
        """Size of every image in the outputs: rendered box and decoded pixels."""
        return self.page.evaluate("""() => Array.from(
            document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output img'))
            .map(img => { const r = img.getBoundingClientRect();
              return {w: r.width, h: r.height, nw: img.naturalWidth, nh: img.naturalHeight,
                      complete: img.complete}; })""")

    def circuitsvis(self):
        """Every circuitsvis visualisation and its canvases: size, and whether any pixel is drawn."""
        return self.page.evaluate("""() => Array.from(
            document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) [id^="circuits-vis-"]'))
            .map(vis => ({
              id: vis.id,
              canvases: Array.from(vis.querySelectorAll('canvas')).map(c => {
                const r = c.getBoundingClientRect();
                let drawn = null, colors = null;
                try {
                  const ctx = c.getContext('2d');
                  if (ctx && c.width && c.height) {
                    const d = ctx.getImageData(0, 0, c.width, c.height).data;
                    drawn = false;
                    const seen = new Set();
                    const step = Math.max(1, Math.floor(c.width / 64)), rows = Math.max(1, Math.floor(c.height / 64));
                    for (let y = 0; y < c.height; y += rows) {
                      for (let x = 0; x < c.width; x += step) {
                        const i = 4 * (y * c.width + x);
                        if (d[i + 3] !== 0) drawn = true;
                        seen.add(`${d[i]},${d[i + 1]},${d[i + 2]},${d[i + 3]}`);
                      }
                    }
                    colors = seen.size;
                  }
                } catch (e) { drawn = null; }
                return {w: c.width, h: c.height, bw: r.width, bh: r.height, drawn, colors};
              }),
            }))""")

    # -- looking at it ---------------------------------------------------------------
    def cell_locator(self, index):
        """The cell at model position `index` (tagged on its node, the DOM nests cells)."""
        self.page.evaluate("""([path, index]) => {
            %s
            panel.content.widgets[index].node.setAttribute('data-nopos-cell', String(index));
        }""" % _PANEL, [self.path, index])
        return self.page.locator(f"[data-nopos-cell='{index}']")

    def screenshot_cell(self, index, path):
        cell = self.cell_locator(index)
        cell.scroll_into_view_if_needed()
        cell.screenshot(path=str(path))

    def screenshot(self, path):
        self.page.screenshot(path=str(path))
