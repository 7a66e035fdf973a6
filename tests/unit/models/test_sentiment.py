"""The review sentiment model: cold start, learning from stars, Chinese and English, snapshots."""

from __future__ import annotations

import pickle

import pytest

from dealstream.connectors.simulator.reviews import reviews
from dealstream.models.sentiment import SentimentModel, target, tokens


def test_tokens_split_cjk_by_character_and_latin_by_word() -> None:
    assert tokens("外卖太慢 Not GOOD!") == ["外", "卖", "太", "慢", "not", "good"]
    assert tokens("，。！") == []


def test_only_clear_ratings_teach() -> None:
    model = SentimentModel.new(seed=False)
    assert model.proba("anything") == 0.5  # knows nothing yet
    assert [model.learn("好", rating=r) for r in (None, 3)] == [False, False]
    assert model.learn("", rating=5) is False  # no tokens
    assert model.learned == 0
    assert target(2) is False and target(4) is True


@pytest.mark.parametrize("family", ["nb", "logreg"])
def test_seed_lexicon_gives_a_sensible_cold_start(family: str) -> None:
    model = SentimentModel.new(family=family)  # type: ignore[arg-type]
    assert model.scored("非常满意，推荐").label == "positive"
    assert model.scored("太差了，很失望").label == "negative"
    assert model.score("excellent, love it") > 0 > model.score("terrible and slow")


def test_learning_from_ratings_beats_the_cold_start_on_held_back_reviews() -> None:
    """Prequential: every rated simulated review is scored before it is learned."""
    data = list(reviews(11, 800, unrated=0.0))
    cold = SentimentModel.new(seed=False)
    correct = 0
    judged = 0
    for review in data[:600]:
        rating = review.item["rating"]
        if target(rating) is not None:
            judged += 1
            correct += (cold.score(review.item["text"]) > 0) == target(rating)
        cold.learn(review.item["text"], rating=rating)
    held = [r for r in data[600:] if target(r.item["rating"]) is not None]
    accuracy = sum((cold.score(r.item["text"]) > 0) == target(r.item["rating"]) for r in held)
    assert accuracy / len(held) > 0.95
    assert correct / judged > 0.8
    assert cold.learned == judged


def test_snapshot_round_trip_scores_identically() -> None:
    model = SentimentModel.new()
    for review in reviews(3, 200):
        model.learn(review.item["text"], rating=review.item["rating"])
    restored = pickle.loads(pickle.dumps(model))
    texts = [r.item["text"] for r in reviews(4, 50)]
    assert [restored.score(t) for t in texts] == [model.score(t) for t in texts]
    assert restored.learned == model.learned
    with pytest.raises(ValueError, match="unknown sentiment model family"):
        SentimentModel.new(family="bert")  # type: ignore[arg-type]
