-- One definition of a control character, the same as promo_core's (Unicode Cc: U+0000-U+001F
-- and U+007F-U+009F; text cannot hold U+0000 at all), instead of [[:cntrl:]], whose meaning
-- depends on the database's locale. The description gets the rule it lacked; a description
-- stored before with control characters has them replaced by spaces, so the constraint holds
-- for every row (a redemption updates the row, and would fail on an old description otherwise).
UPDATE promo_codes
SET description = regexp_replace(description, '[\x01-\x1f\x7f-\x9f]', ' ', 'g')
WHERE description ~ '[\x01-\x1f\x7f-\x9f]';

ALTER TABLE promo_codes
    DROP CONSTRAINT promo_codes_owner_check,
    ADD CONSTRAINT promo_codes_owner_check
        CHECK (char_length(owner) BETWEEN 1 AND 255 AND owner !~ '[\x01-\x1f\x7f-\x9f]'),
    DROP CONSTRAINT promo_codes_description_check,
    ADD CONSTRAINT promo_codes_description_check
        CHECK (description IS NULL OR (char_length(description) <= 500 AND description !~ '[\x01-\x1f\x7f-\x9f]'));

ALTER TABLE redemptions
    DROP CONSTRAINT redemptions_order_id_check,
    ADD CONSTRAINT redemptions_order_id_check
        CHECK (char_length(order_id) BETWEEN 1 AND 128 AND order_id !~ '[\x01-\x1f\x7f-\x9f]');
