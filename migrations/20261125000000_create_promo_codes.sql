-- The promo codes. The CHECK constraints mirror promo_core::domain, so the database refuses bad
-- data even from a client that skips the domain types. Constraint names are read by the store
-- to tell the caller which field was wrong.

CREATE TABLE promo_codes (
    -- Stored upper-case; the "C" collation makes ordering and prefix search byte-wise, identical
    -- on every server whatever its locale, and lets LIKE 'PREFIX%' use the primary key's index.
    code            text COLLATE "C" NOT NULL,
    owner           text NOT NULL,
    -- The discount in basis points: 12.5 % is 1250. Exact, no float.
    discount_bp     integer NOT NULL,
    expires_at      timestamptz NOT NULL,
    description     text,
    active          boolean NOT NULL DEFAULT true,
    max_redemptions integer,
    times_redeemed  integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    version         integer NOT NULL DEFAULT 1,

    CONSTRAINT promo_codes_pkey PRIMARY KEY (code),
    CONSTRAINT promo_codes_code_check CHECK (code ~ '^[A-Z0-9_-]{4,32}$'),
    CONSTRAINT promo_codes_owner_check
        CHECK (char_length(owner) BETWEEN 1 AND 255 AND owner !~ '[[:cntrl:]]'),
    CONSTRAINT promo_codes_discount_bp_check CHECK (discount_bp > 0 AND discount_bp <= 10000),
    CONSTRAINT promo_codes_expires_at_check CHECK (expires_at > created_at),
    CONSTRAINT promo_codes_description_check
        CHECK (description IS NULL OR char_length(description) <= 500),
    CONSTRAINT promo_codes_max_redemptions_check
        CHECK (max_redemptions IS NULL OR max_redemptions >= 1),
    CONSTRAINT promo_codes_times_redeemed_check
        CHECK (times_redeemed >= 0 AND (max_redemptions IS NULL OR times_redeemed <= max_redemptions)),
    CONSTRAINT promo_codes_version_check CHECK (version >= 1)
);

-- One index per sort key, each ending in code: the tie-break. A B-tree serves both directions,
-- so keyset pagination on (key, code) in either direction is an index range scan.
CREATE INDEX promo_codes_created_at_idx ON promo_codes (created_at, code);
CREATE INDEX promo_codes_expires_at_idx ON promo_codes (expires_at, code);
CREATE INDEX promo_codes_discount_bp_idx ON promo_codes (discount_bp, code);
-- The back office's most common filter: one owner's codes, newest first.
CREATE INDEX promo_codes_owner_created_at_idx ON promo_codes (owner, created_at, code);
