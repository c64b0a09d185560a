"""Interactive demos: a plain drawing function, wired to controls only at the last moment.

The drawing function takes a matplotlib Figure and keyword parameters, so tests and the
benchmark call it directly, with no browser and no widgets. It may return an `update(**params)`
function that moves its artists to new parameters (set_data, set_height, set_text): a demo then
keeps one figure and redraws only what changed, which is what makes a slider feel instant.
course.figures.all_demos() lists the demos.
"""

import io
from dataclasses import dataclass

import matplotlib.pyplot as plt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


@dataclass(frozen=True)
class Slider:
    """A float slider: range, step and starting value."""

    min: float
    max: float
    step: float
    value: float
    description: str = ""
    only_when: tuple = ()  # (param, value): enabled only while that parameter has that value

    def widget(self, name):
        import ipywidgets as widgets

        return widgets.FloatSlider(min=self.min, max=self.max, step=self.step, value=self.value,
                                   **_common(self, name))


@dataclass(frozen=True)
class IntSlider(Slider):
    """An integer slider: range, step and starting value."""

    def widget(self, name):
        import ipywidgets as widgets

        return widgets.IntSlider(min=int(self.min), max=int(self.max), step=int(self.step),
                                 value=int(self.value), **_common(self, name))


@dataclass(frozen=True)
class Choice:
    """One of a few options, shown as toggle buttons (or as a slider over ordered options)."""

    options: tuple
    value: object
    description: str = ""
    only_when: tuple = ()
    slider: bool = False  # ordered options such as (1, 2, 4, 8): a SelectionSlider

    def widget(self, name):
        import ipywidgets as widgets

        if not self.slider:
            return widgets.ToggleButtons(options=list(self.options), value=self.value,
                                         **_common(self, name))
        w = widgets.SelectionSlider(options=list(self.options), value=self.value,
                                    **_common(self, name))
        w.add_class("course-options")  # the browser tests move it by one option, not by typing
        return w


def _common(control, name):
    return {"description": control.description or name, "continuous_update": False,
            "style": {"description_width": "initial"}}


def active(control, params):
    """Whether a control does anything for these parameters (its only_when holds)."""
    return not control.only_when or params[control.only_when[0]] == control.only_when[1]


def _encode_png(canvas):
    """The canvas's pixels as PNG bytes (fast zlib level: the bytes stay on this machine)."""
    from PIL import Image

    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba())
    buf = io.BytesIO()
    image.save(buf, format="png", compress_level=1)
    return buf.getvalue()


def png_bytes(fig):
    """The figure rendered once by Agg, as PNG bytes."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return _encode_png(canvas)


class LiveFigure:
    """One persistent figure for a demo: the first call draws it, later calls update it.

    When the draw function's update lists the artists it changes (`update.artists`), only
    those are redrawn, over a saved image of everything else (blitting): axes, ticks, labels
    and fixed curves are rasterised once.
    """

    def __init__(self, draw):
        self.draw = draw
        self.fig = Figure()
        self.canvas = FigureCanvasAgg(self.fig)
        self.update = None
        self._background = None

    def png(self, **params):
        """PNG bytes of the figure at these parameters."""
        if self.update is not None:
            self.update(**params)
        else:
            self.fig.clear()
            self.update = self.draw(self.fig, **params)
            artists = getattr(self.update, "artists", ())
            for a in artists:
                a.set_animated(True)  # left out of canvas.draw(): the saved background
            for a in self._blit_order() if artists else ():
                a.set_animated(True)
            if artists:
                self.canvas.draw()
                self._background = self.canvas.copy_from_bbox(self.fig.bbox)
        if self._background is None:
            data = png_bytes(self.fig)
        else:
            self.canvas.restore_region(self._background)
            for a in self._blit_order():
                self.fig.draw_artist(a)
            data = _encode_png(self.canvas)
        if self.update is not None:
            # The first draw placed every axes (tight layout or fixed margins); keep them there
            # so later redraws skip the layout pass.
            self.fig.set_layout_engine("none")
        return data

    def _blit_order(self):
        """The changing artists plus their axes' spines, in matplotlib's own drawing order
        (zorder, then the order given), so a blitted frame equals a full redraw."""
        artists = list(self.update.artists)
        for ax in {a.axes for a in artists if a.axes is not None and a.axes.axison}:
            artists += [sp for sp in ax.spines.values() if sp.get_visible() and sp not in artists]
        return sorted(artists, key=lambda a: a.get_zorder())


@dataclass(frozen=True)
class Demo:
    """A named drawing function and the controls (sliders, choices) that drive it."""

    name: str
    draw: object  # draw(fig, **params) -> None, or an update(**params) for the same figure
    sliders: dict  # param name -> Slider, IntSlider or Choice
    question: str  # the guiding question shown above the demo

    def defaults(self):
        """The starting value of every parameter."""
        return {k: s.value for k, s in self.sliders.items()}

    def figure(self, **params):
        """Draw once with the given (or default) parameters and return the figure."""
        fig = plt.figure()
        self.draw(fig, **{**self.defaults(), **params})
        return fig

    def show(self):
        """Display the controls and a live figure in a notebook."""
        import ipywidgets as widgets
        from IPython.display import display

        controls = {k: s.widget(k) for k, s in self.sliders.items()}
        live = LiveFigure(self.draw)
        image = widgets.Image(format="png", layout={"max_width": "100%"})
        errors = widgets.Output()  # a traceback from a redraw shows here, under the figure
        failed = [False]

        def redraw(_change=None):
            params = {k: w.value for k, w in controls.items()}
            for k, s in self.sliders.items():
                controls[k].disabled = not active(s, params)
            if failed[0]:
                errors.clear_output()
                failed[0] = False
            with errors:
                failed[0] = True
                image.value = live.png(**params)
                failed[0] = False

        for w in controls.values():
            w.observe(redraw, names="value")
        redraw()
        choices = [w for w in controls.values() if isinstance(w, widgets.ToggleButtons)]
        sliders = [w for w in controls.values() if w not in choices]
        display(widgets.HTML(f"<b>Question:</b> {self.question}"),
                *choices, widgets.HBox(sliders), image, errors)
