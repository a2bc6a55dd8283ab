"""Zero-cost proxies: scores of an untrained model from one batch of the task.

Cheap predictors that any supernet ranking must beat (Abdelfattah et al., "Zero-Cost Proxies
for Lightweight NAS", ICLR 2021; NASLib's collection of them): :mod:`~nasplug.zerocost.measures`
computes SynFlow, grad-norm, SNIP and Jacobian covariance of a model, and
:mod:`~nasplug.zerocost.evaluators` registers each as an evaluator (``evaluator: {name:
synflow}``), scoring an arch on a freshly initialised standalone model. ``nasplug rank-corr
--predictors`` ranks the same standalone-trained archs by them beside the supernet.
"""

#: The registered proxies (evaluator names), each also the metric its evaluator returns.
PROXIES = ("synflow", "grad_norm", "snip", "jacov")
