CREATE TABLE pulled_two (id int PRIMARY KEY);
ALTER TABLE pulled_two ENABLE ROW LEVEL SECURITY;
CREATE POLICY pulled_two_read ON pulled_two FOR SELECT USING (true);
