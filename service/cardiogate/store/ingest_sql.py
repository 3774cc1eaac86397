"""The SQL of the ingest path, sent straight to the driver (see :meth:`.Store.record_instance`).

``INSERT ... ON CONFLICT DO UPDATE`` and ``excluded`` are spoken alike by SQLite (3.24+) and
PostgreSQL; ``:name`` parameters become ``%(name)s`` for drivers that want that.
"""

GET_INSTANCE = """
SELECT series_instance_uid, path, size_bytes FROM instances
WHERE sop_instance_uid = :sop"""
UPSERT_STUDY = """
INSERT INTO studies (study_instance_uid, first_received_at, last_received_at)
VALUES (:study, :now, :now)
ON CONFLICT (study_instance_uid) DO UPDATE SET last_received_at = excluded.last_received_at"""
SERIES_STATE = "SELECT state FROM series WHERE series_instance_uid = :series"
UPSERT_SERIES = """
INSERT INTO series (series_instance_uid, study_instance_uid, modality, series_number,
    series_description, sop_class_uid, body_part_examined, protocol_name, image_type,
    contrast_bolus_agent, slice_thickness, state, first_received_at, last_received_at,
    reopened_count, replica_id)
VALUES (:series, :study, :modality, :series_number, :series_description, :sop_class,
    :body_part, :protocol, :image_type, :contrast, :thickness, 'receiving', :now, :now, 0,
    :replica)
ON CONFLICT (series_instance_uid) DO UPDATE SET
    last_received_at = excluded.last_received_at,
    replica_id = excluded.replica_id,
    completed_at = NULL,
    reopened_count = series.reopened_count
        + CASE WHEN series.state = 'complete' THEN 1 ELSE 0 END,
    state = 'receiving'"""
UPSERT_INSTANCE = """
INSERT INTO instances (sop_instance_uid, series_instance_uid, sop_class_uid,
    transfer_syntax_uid, instance_number, number_of_frames, path, size_bytes,
    calling_ae_title, received_at, replaced_count)
VALUES (:sop, :series, :sop_class, :ts, :instance_number, :frames, :path, :size,
    :calling, :now, 0)
ON CONFLICT (sop_instance_uid) DO UPDATE SET
    series_instance_uid = excluded.series_instance_uid,
    sop_class_uid = excluded.sop_class_uid,
    transfer_syntax_uid = excluded.transfer_syntax_uid,
    instance_number = excluded.instance_number,
    number_of_frames = excluded.number_of_frames,
    path = excluded.path,
    size_bytes = excluded.size_bytes,
    calling_ae_title = excluded.calling_ae_title,
    received_at = excluded.received_at,
    replaced_count = instances.replaced_count + 1"""
