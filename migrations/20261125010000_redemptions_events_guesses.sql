-- Redemptions, the audit trail, and the failed-guess counter.

-- One row per (code, order): the unique constraint is what makes a retried redemption
-- idempotent and a concurrent duplicate count once.
CREATE TABLE redemptions (
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    code        text COLLATE "C" NOT NULL,
    order_id    text NOT NULL,
    redeemed_by text NOT NULL,
    discount_bp integer NOT NULL,
    redeemed_at timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT redemptions_pkey PRIMARY KEY (id),
    CONSTRAINT redemptions_code_fkey FOREIGN KEY (code) REFERENCES promo_codes (code),
    CONSTRAINT redemptions_code_order_id_key UNIQUE (code, order_id),
    CONSTRAINT redemptions_order_id_check
        CHECK (char_length(order_id) BETWEEN 1 AND 128 AND order_id !~ '[[:cntrl:]]'),
    CONSTRAINT redemptions_discount_bp_check CHECK (discount_bp > 0 AND discount_bp <= 10000)
);

-- Every create, update and redemption: who (the token's sub), when, and what changed. Written in
-- the same transaction as the change it records.
CREATE TABLE promo_code_events (
    id      bigint GENERATED ALWAYS AS IDENTITY,
    code    text COLLATE "C" NOT NULL,
    action  text NOT NULL,
    actor   text NOT NULL,
    at      timestamptz NOT NULL DEFAULT now(),
    changes jsonb NOT NULL,

    CONSTRAINT promo_code_events_pkey PRIMARY KEY (id),
    CONSTRAINT promo_code_events_code_fkey FOREIGN KEY (code) REFERENCES promo_codes (code),
    CONSTRAINT promo_code_events_action_check CHECK (action IN ('created', 'updated', 'redeemed'))
);
-- Serves the events of one code in order, page after page (keyset on id).
CREATE INDEX promo_code_events_code_id_idx ON promo_code_events (code, id);

-- `not_found` answers per caller, counted in the database so the limit holds across Lambda
-- instances. Rows older than the window are deleted as the same caller adds new ones.
CREATE TABLE guess_failures (
    caller text NOT NULL,
    at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX guess_failures_caller_at_idx ON guess_failures (caller, at);
