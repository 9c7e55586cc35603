"""nbgrader on the hub, for every user's server and the grader's: nopos.hub.server copies
it into the environment's etc/jupyter and the grader's ~/.jupyter at every start."""
from nbgrader.auth import JupyterHubAuthPlugin

from nopos.hub.settings import EXCHANGE

c = get_config()  # noqa: F821  (nbgrader provides get_config)
c.Exchange.root = EXCHANGE
c.Exchange.path_includes_course = True  # several courses may share the exchange
c.Authenticator.plugin_class = JupyterHubAuthPlugin  # courses = the user's hub groups
# a submission's folder 0755, not nbgrader's 0777: no learner changes another's (nopos/hub/exchange.py)
c.ExchangeFactory.submit = "nopos.hub.exchange.PrivateSubmit"
