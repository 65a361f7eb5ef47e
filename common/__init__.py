"""What every package of the house may import besides ``features``: the typed settings.

``common`` sits below ``training``, ``serving`` and the ``cargorisk`` CLI and imports none of
them (import-linter holds it), so the service can read its settings without importing the CLI
package that starts it.
"""
