"""Treating every input as hostile: regular files only, bounded numbers and shapes, sanitized text.

Owns: opening and reading regular files with their identity checked (`files`), validated numbers
and shapes with their element and rank limits (`numbers`), and the one sanitizer every name, path
and message passes through before it is printed (`sanitize`).

May import: `initcli.errors` only, so that every layer above may use it.
"""
