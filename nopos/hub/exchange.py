"""nbgrader's submit, with the submission's folder closed to other learners.

nbgrader's own submit leaves each submission's folder mode 0777 ("so the
instructor can delete later"), hidden only by its random name: whoever learns the
name may delete or replace the files in it. Here the folder is left 0755 like
everything in it: the grader still reads it to collect, root removes it, nobody
else changes it. hub/nbgrader_config.py names it (ExchangeFactory.submit), so the
Assignments tab and the nbgrader command use it. A learner who runs another submit
only leaves her own folder open; collect (nopos.grading.ownership) sets aside a
submission holding a file someone else made.
"""
import os

from nbgrader.exchange.default.submit import ExchangeSubmit

FOLDER_MODE = 0o755


class PrivateSubmit(ExchangeSubmit):
    def copy_files(self):
        super().copy_files()
        folder = os.path.join(self.inbound_path, self.assignment_filename)
        if os.path.isdir(folder) and not os.path.islink(folder):
            os.chmod(folder, FOLDER_MODE)
