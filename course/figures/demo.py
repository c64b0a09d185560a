"""Interactive demos: a plain drawing function, wired to sliders only at the last moment.

The drawing function takes a matplotlib Figure and keyword parameters, so tests and the
benchmark call it directly, with no browser and no widgets. course.figures.all_demos() lists them.
"""

from dataclasses import dataclass

import matplotlib.pyplot as plt


@dataclass(frozen=True)
class Slider:
    """A float slider: range, step and starting value."""

    min: float
    max: float
    step: float
    value: float
    description: str = ""


@dataclass(frozen=True)
class Demo:
    """A named drawing function and the sliders that drive it."""

    name: str
    draw: object  # draw(fig, **params) -> None
    sliders: dict  # param name -> Slider
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
        """Display sliders and a live figure in a notebook."""
        import ipywidgets as widgets
        from IPython.display import display

        controls = {
            k: widgets.FloatSlider(min=s.min, max=s.max, step=s.step, value=s.value,
                                   description=s.description or k, continuous_update=False,
                                   style={"description_width": "initial"})
            for k, s in self.sliders.items()
        }

        def redraw(**params):
            self.figure(**params)
            plt.show()

        out = widgets.interactive_output(redraw, controls)
        display(widgets.HTML(f"<b>Question:</b> {self.question}"),
                widgets.HBox(list(controls.values())), out)
