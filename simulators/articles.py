"""Turn a scenario's articles into the machine models' own article tables.

A scenario names articles the way a mill plans them (a share of the machines, a speed
and a stop-rate multiplier, picks/cm and the warp:weft stop split for looms); the loom
and knitting models take concrete rates. Dyeing recipes and stenter finishes keep the
models' own tables for now.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from simulators.knitting import DEFAULT_ARTICLES as KNIT_DEFAULTS
from simulators.knitting import KnitArticle
from simulators.loom import DEFAULT_ARTICLES as LOOM_DEFAULTS
from simulators.loom import LoomArticle
from simulators.scenario import ArticleConfig

#: Copies per unit of share: the models pick an article uniformly per machine.
_SHARE_RESOLUTION = 20


T = TypeVar("T")


def _weighted(articles: Sequence[tuple[T, float]]) -> tuple[T, ...]:
    return tuple(
        a for a, share in articles for _ in range(max(1, round(share * _SHARE_RESOLUTION)))
    )


def loom_articles(machine_type: str, configs: Sequence[ArticleConfig]) -> tuple[LoomArticle, ...]:
    """Loom styles: the model's mean stop rates scaled by ``stop_mul``, split by the ratio.

    >>> from simulators.scenario import load_scenario
    >>> planned = load_scenario("default").articles("f01", "loom_airjet")
    >>> styles = loom_articles("loom_airjet", planned)
    >>> round(styles[0].warp_per_1e5 / styles[0].weft_per_1e5, 2)
    0.5
    """
    base = LOOM_DEFAULTS[machine_type]
    warp_weft = sum(a.warp_per_1e5 + a.weft_per_1e5 for a in base) / len(base)
    other = sum(a.other_per_1e5 for a in base) / len(base)
    built = []
    for c in configs:
        ratio = c.warp_weft_ratio or 0.5
        total = warp_weft * c.stop_mul
        article = LoomArticle(
            c.name,
            picks_per_cm=c.picks_per_cm or 24.0,
            speed_share=min(c.speed_mul, 1.0),
            warp_per_1e5=total * ratio / (1 + ratio),
            weft_per_1e5=total / (1 + ratio),
            other_per_1e5=other * c.stop_mul,
            tension_kn=3.0,
        )
        built.append((article, c.share))
    return _weighted(built)


def knit_articles(configs: Sequence[ArticleConfig]) -> tuple[KnitArticle, ...]:
    """Knitted articles: the model's typical loop and yarn, the scenario's speed and stops."""
    base = KNIT_DEFAULTS[0]
    built = [
        (
            KnitArticle(
                c.name,
                stitch_mm=base.stitch_mm,
                yarn_tex=base.yarn_tex,
                speed_share=min(c.speed_mul, 1.0),
                yarn_stop_mul=c.stop_mul,
                tension_cn=base.tension_cn,
            ),
            c.share,
        )
        for c in configs
    ]
    return _weighted(built)
