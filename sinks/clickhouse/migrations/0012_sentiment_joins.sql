-- Sentiment joined to the unified customer view and to channel health.
--
-- customer_sentiment: what each resolved customer's own chat messages sound like (scored in the
-- stream by the review-trained model, streams/chat_sentiment.py), through the journey step the
-- same message made (journey_steps_resolved carries the customer id after merges).
CREATE VIEW IF NOT EXISTS customer_sentiment AS
SELECT
    j.customer_id AS customer_id,
    count() AS scored_messages,
    avg(c.score) AS mean_score,
    countIf(c.label = 'negative') AS negative_messages,
    max(c.occurred_at) AS latest_at
FROM chat_sentiment AS c FINAL
INNER JOIN journey_steps_resolved AS j ON j.event_id = c.event_id
WHERE c.speaker_role = 'CUSTOMER'
GROUP BY j.customer_id;

-- channel_health_with_reviews: each channel's latest health next to the sentiment of its reviews
-- in the 30 days before the newest review, and the score scaled by that sentiment (a store whose
-- reviews are all negative scores 0; without reviews the score is the stream's own).
CREATE VIEW IF NOT EXISTS channel_health_with_reviews AS
SELECT
    h.channel_id AS channel_id,
    h.channel_kind AS channel_kind,
    h.region AS region,
    h.score AS score,
    h.turnover AS turnover,
    h.sla AS sla,
    h.intent AS intent,
    h.alerting AS alerting,
    r.reviews AS reviews_30d,
    r.mean_score AS review_sentiment_30d,
    r.negative AS negative_reviews_30d,
    if(r.reviews > 0 AND h.score IS NOT NULL, h.score * (r.mean_score + 1) / 2, h.score)
        AS score_with_reviews
FROM channel_health_latest AS h
LEFT JOIN
(
    SELECT store_id, count() AS reviews, avg(score) AS mean_score,
        countIf(label = 'negative') AS negative
    FROM review_sentiment FINAL
    WHERE posted_at >= (SELECT max(posted_at) FROM review_sentiment) - INTERVAL 30 DAY
    GROUP BY store_id
) AS r ON r.store_id = h.channel_id
SETTINGS join_use_nulls = 1;
