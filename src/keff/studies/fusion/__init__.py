"""The fusion study: does fusing specialists per query beat the best single one?

On a mixed-domain corpus (SciFact, MedQuAD, skills; :mod:`.mixed`) every specialist is built
(fine-tuned where planned, encoded, aligned into one frame, given sigma^2 estimators;
:mod:`.prepare`), every fusion strategy scores the test queries (:mod:`.strategies`, judged by
:mod:`.judge`), and the results are tested, timed and diagnosed (:mod:`.evaluate`,
:mod:`.latency`), with the drift experiment beside them (:mod:`.drift`). :func:`run` returns the
JSON; :mod:`.plot` draws its figure; ``benchmarks/fusion.py`` drives it.
"""

from keff.studies.fusion.run import FusionConfig, run

__all__ = ["FusionConfig", "run"]
