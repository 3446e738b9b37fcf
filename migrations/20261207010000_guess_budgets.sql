-- A budget of `not_found` answers per caller and window, one row per caller, so that the check
-- and the record of a failed guess are one atomic statement: concurrent guesses of one caller
-- queue on the row, and each sees the count the one before it left. (Counting rows of
-- guess_failures let every guess of a burst see the same count.) guess_failures is no longer
-- written; functions deployed before this migration still read it until their release is
-- replaced, so a later migration drops it.
CREATE TABLE guess_budgets (
    caller       text NOT NULL,
    window_start timestamptz NOT NULL,
    used         integer NOT NULL,
    CONSTRAINT guess_budgets_pkey PRIMARY KEY (caller),
    CONSTRAINT guess_budgets_used_check CHECK (used >= 1)
);
