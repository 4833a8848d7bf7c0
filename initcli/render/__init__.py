"""Output: turning reports into tables, JSON, CSV, Markdown, GitHub annotations, `.npy` files and progress bars.

Owns: the output formats and consoles (`formats`), the terminal tables fitted to the width
(`tables`), printing a report in the format asked for (`printing`), `propagate`'s tables and plot
(`propagate`), the progress bar (`progress`) and the `.npy` writer of `sample --save`
(`npy_writer`), counted nouns in messages (`wording`, imports nothing). A renderer formats what it is
given; it reads no file and computes no statistic.

May import: `initcli.reports`, `initcli.safety`, `initcli.types`, `initcli.errors`, and the
records it formats. Never the command line.
"""
