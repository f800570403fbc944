-- Demo project: the documents users search. Owners write their own rows;
-- everybody reads public documents, owners also their private ones.

CREATE TABLE public.documents (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  title text NOT NULL,
  body text NOT NULL,
  tags text[] NOT NULL DEFAULT '{}',
  owner_id uuid NOT NULL,
  is_public boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX documents_owner_id_idx ON public.documents (owner_id);

ALTER TABLE public.documents ENABLE ROW LEVEL SECURITY;
CREATE POLICY documents_read ON public.documents
  FOR SELECT TO anon, authenticated
  USING (is_public OR owner_id = (SELECT auth.uid()));
CREATE POLICY documents_insert_own ON public.documents
  FOR INSERT TO authenticated
  WITH CHECK (owner_id = (SELECT auth.uid()));
CREATE POLICY documents_update_own ON public.documents
  FOR UPDATE TO authenticated
  USING (owner_id = (SELECT auth.uid()))
  WITH CHECK (owner_id = (SELECT auth.uid()));
CREATE POLICY documents_delete_own ON public.documents
  FOR DELETE TO authenticated
  USING (owner_id = (SELECT auth.uid()));
