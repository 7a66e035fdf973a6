"""Micro-benchmarks for the rules core (run by hand, not asserted by tests).

``python -m dealstream.streams.rules.bench`` prints compliance matching throughput with 5,000
phrases on ~100-character Chinese messages and business rule evaluation cost per event.
"""

from __future__ import annotations

import random
import time

from dealstream.streams.rules.compliance import ComplianceRules
from dealstream.streams.rules.engine import RuleEngine

_CJK = (  # common characters, so random text looks like Chinese text
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动"
    "同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自"
    "二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日"
    "那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变"
    "条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总"
    "次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指"
    "几九区强放决西被干做必战先回则任取据处理府研质"
)


def compliance_messages_per_second(
    n_phrases: int = 5000, n_messages: int = 2000, length: int = 100, seed: int = 7
) -> float:
    """Messages/s through ``ComplianceRules.evaluate`` with ``n_phrases`` phrases in 50 rules."""
    rng = random.Random(seed)
    phrases = sorted({"".join(rng.choices(_CJK, k=rng.randint(3, 6))) for _ in range(n_phrases)})
    lines = ["rules:"]
    per_rule = max(1, len(phrases) // 50)
    for r in range(0, len(phrases), per_rule):
        chunk = ", ".join(phrases[r : r + per_rule])
        lines += [
            f"  - id: r{r}",
            "    version: 1",
            "    severity: WARNING",
            f"    phrases: [{chunk}]",
            "    speaker_roles: [SALES_REP]",
        ]
    rules = ComplianceRules.from_yaml("\n".join(lines))
    messages = []
    for _ in range(n_messages):
        text = "".join(rng.choices(_CJK + "，。 ", k=length))
        if rng.random() < 0.2:  # a fifth of the messages contain a phrase
            i = rng.randrange(length - 6)
            text = text[:i] + rng.choice(phrases) + text[i + 6 :]
        messages.append({"event_id": "e", "payload": {"speaker_role": "SALES_REP", "text": text}})
    start = time.perf_counter()
    for m in messages:
        rules.evaluate(m)
    return n_messages / (time.perf_counter() - start)


def business_rule_microseconds_per_event(n_events: int = 20000) -> float:
    """µs per event for the turnover + competitor price rule over 100 SKUs."""
    engine = RuleEngine.from_yaml(
        """
rules:
  - id: slow_stock_price_pressure
    version: 1
    kind: pricing
    severity: WARNING
    key: [payload.sku, payload.region]
    record:
      erp.inventory: {turnover_days: payload.turnover_days}
      competitor.price: {competitor_price_change_pct: payload.change_pct}
    when: last("turnover_days") > 45 and min_over("competitor_price_change_pct", "7d") < -5
    suppress_for: 1d
"""
    )
    rng = random.Random(3)
    events = []
    for i in range(n_events):
        sku = f"SKU{rng.randrange(100)}"
        if i % 2:
            payload = {"sku": sku, "region": "EAST", "turnover_days": rng.uniform(10, 80)}
            etype = "erp.inventory"
        else:
            payload = {"sku": sku, "region": "EAST", "change_pct": rng.uniform(-10, 10)}
            etype = "competitor.price"
        events.append(
            {
                "event_id": f"e{i}",
                "event_type": etype,
                "occurred_at": i * 60_000,
                "payload": payload,
            }
        )
    start = time.perf_counter()
    for e in events:
        engine.process(e)
    return (time.perf_counter() - start) / n_events * 1e6


if __name__ == "__main__":  # pragma: no cover
    print(f"compliance, 5000 phrases: {compliance_messages_per_second():,.0f} messages/s")
    print(f"business rule: {business_rule_microseconds_per_event():.1f} µs/event")
