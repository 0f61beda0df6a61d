"""Report templates (jinja2) for the Markdown review and the text summary.

The templates read the canonical JSON document only (see ``pgolf_audit.render``).
"""
