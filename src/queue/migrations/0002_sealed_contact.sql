-- 0002: the applicant's email and phone are stored sealed with the queue key (like the images), in `contact`.
-- `email` and `phone` stay for rows written before this version; the store seals those at open and empties them.

ALTER TABLE enrollment ADD COLUMN contact BLOB;  -- AES-256-GCM of "email\nphone digits", bound to the reference
