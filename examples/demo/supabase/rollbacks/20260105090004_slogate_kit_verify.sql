-- Undoes 20260101000400_slogate_kit_verify.sql.
DROP FUNCTION public.check_slo_compliance(integer, double precision, double precision, double precision,
                                          double precision, integer);
DROP FUNCTION public.verify_materialized_view_indexes();
DROP FUNCTION public.verify_final_punchlist_migration();
DROP FUNCTION public.verify_migration_success();
DROP FUNCTION slogate.matviews_without_unique_index(text);
DROP FUNCTION slogate.missing_functions(text[]);
DROP FUNCTION slogate.missing_relations(text[], "char"[]);
DROP FUNCTION slogate.verdict(jsonb[]);
DROP FUNCTION slogate.check(text, boolean, text);
DROP FUNCTION slogate.require_admin();
