"""Operator tools behind the ``asgisec`` command: ``audit``, ``monitor`` and ``check``.

Nothing here is imported by the middleware: the package is loaded only by :mod:`asgisec.cli`
through ``TOOL_MODULES``, and its network dependencies (httpx, rich, cryptography: the
``tools`` extra) are imported inside the command handlers.

* :mod:`.audit` — probe a live service and grade it (:mod:`.scoring` is the MDN HTTP
  Observatory algorithm, :mod:`.findings` the API checks, :mod:`.probes` the requests,
  :mod:`.tls` the TLS checks, :mod:`.report` the text/JSON/SARIF output);
* :mod:`.monitor` — poll ``/health`` and alert on counter rates (:mod:`.rates`);
* :mod:`.check` — the pre-deployment configuration checklist (:mod:`.checklist`).

Every check has a stable id, listed with its meaning and fix in ``docs/tools.md``.
"""
