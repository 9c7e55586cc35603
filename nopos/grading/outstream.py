"""Kernel side: the grading kernel's stdout and stderr, sent in messages of at most 1 MB.

ipykernel gathers what a cell prints for 0.2 s and sends it as one message, so a
cell that prints 100 MB at once sends one message of 100 MB. The grader takes
output messages of at most 8 MB (nopos/grading/sandbox.py); zmq drops the
connection on a larger one, and with it the messages around it, the kernel's
"idle" included, so the cell then waited out its time limit and lost its
answer. Here a large write goes out in pieces: the grader keeps the cell's first
4 MB, says the rest was cut, and the cell ends when it ends.
(`--IPKernelApp.outstream_class`, nopos/grading/sandbox_launcher.py.)
"""
from ipykernel.iostream import OutStream

CHUNK = 1 << 20  # characters per message, at most (before the JSON around them)


class ChunkedOutStream(OutStream):
    _unsent = 0

    def write(self, string):
        if not isinstance(string, str) or len(string) <= CHUNK:
            written = super().write(string)
            self._unsent += len(string) if isinstance(string, str) else 0
            if self._unsent > CHUNK:
                self._send_now()
            return written
        for start in range(0, len(string), CHUNK):
            super().write(string[start:start + CHUNK])
            self._send_now()
        return len(string)

    def _send_now(self):
        self._unsent = 0
        self.flush()
