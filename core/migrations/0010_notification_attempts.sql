-- What each notification attempt went to and why it ended as it did (issue 18 item 4): the request page and the
-- API list every attempt with its address or device and its result in plain words ("rang 30 s, no answer",
-- "texts are off"), not only a status.
--
-- `target` is where the page or text went ("sip:maria@10.0.0.7:5062 (registered phone)", "+12125550101 via
-- trunk carrier"), `detail` the outcome's reason; both empty until known.

ALTER TABLE notifications ADD COLUMN target TEXT NOT NULL DEFAULT '';
ALTER TABLE notifications ADD COLUMN detail TEXT NOT NULL DEFAULT '';
