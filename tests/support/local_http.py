"""A real HTTP server on a free 127.0.0.1 port, served from a thread: what a test stands up when a module or role
needs something to answer (an app, a webhook receiver)."""

import threading
from http.server import ThreadingHTTPServer


class LocalHTTPServer:
    """Serves handler_class while the with block runs; base_url is http://127.0.0.1:<port>."""

    def __init__(self, handler_class):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base_url = "http://127.0.0.1:%d" % self.port
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self.server.shutdown()
        self.server.server_close()
