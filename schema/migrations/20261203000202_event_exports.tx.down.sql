DROP TABLE event_exports;
