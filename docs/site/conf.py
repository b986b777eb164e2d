"""Sphinx configuration of the course's static site (built by ``python -m labs.site``).

The notebooks are rendered as the runner executed them (``nb_execution_mode = "off"``):
building the site runs no code and needs no network. Everything the pages load — theme,
MathJax, fonts — is copied into ``_static/``; ``labs.site`` checks that no page pulls a
script, stylesheet or image from an external URL.
"""

project = "AIGC Lab"
author = "AIGC Lab contributors"
copyright = "AIGC Lab contributors, MIT licence"

extensions = [
    "myst_nb",  # notebooks and MyST markdown
    "sphinx-mathjax-offline",  # MathJax 3 served from _static/, not from a CDN
]

# Notebooks arrive executed (by `python -m labs.run`); never execute them here.
nb_execution_mode = "off"
nb_output_stderr = "show"
nb_merge_streams = True
# No require.js / widget manager from a CDN: labs.site replaces widget views with a note.
nb_ipywidgets_js = {}

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

exclude_patterns = ["_build", "**.ipynb_checkpoints"]
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type"]

html_theme = "sphinx_book_theme"
html_title = "AIGC Lab"
html_last_updated_fmt = None
html_copy_source = False
html_show_sourcelink = False
html_theme_options = {
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "home_page_in_toc": True,
}
html_static_path = ["_static"]
html_css_files = ["aigc.css"]
