-- Undoes 20260105090000_documents.sql. Drops the documents and their data.
DROP TABLE public.documents;
