-- tenancy-fixtures: the tenant schema, rendered for PostgreSQL.
-- Each tenant gets these tables in its own schema in place of "tenant".
-- Generated from the tenant MetaData; regenerate with
--   tenancy-fixtures schema-sql > src/tenancy_fixtures/templates/schema_template.sql

CREATE TABLE tenant.ai_models (
	model_id VARCHAR(64) NOT NULL,
	provider VARCHAR(64) NOT NULL,
	model_name VARCHAR(128) NOT NULL,
	version VARCHAR(64) NOT NULL,
	task VARCHAR(32) NOT NULL,
	parameters JSONB NOT NULL,
	credentials JSONB,
	tiers JSONB,
	features JSONB,
	enabled BOOLEAN DEFAULT true NOT NULL,
	is_default BOOLEAN DEFAULT false NOT NULL,
	CONSTRAINT pk_ai_models PRIMARY KEY (model_id),
	CONSTRAINT ck_ai_models_task CHECK (task IN ('recommendation', 'playlist_generation', 'audio_analysis', 'chat'))
);

CREATE UNIQUE INDEX uq_ai_models_default_per_task ON tenant.ai_models (task) WHERE is_default;

CREATE TABLE tenant.artists (
	artist_id VARCHAR(22) NOT NULL,
	name VARCHAR(400) NOT NULL,
	genres JSONB,
	popularity INTEGER,
	followers BIGINT,
	CONSTRAINT pk_artists PRIMARY KEY (artist_id),
	CONSTRAINT ck_artists_popularity CHECK (popularity >= 0 AND popularity <= 100),
	CONSTRAINT ck_artists_followers CHECK (followers >= 0)
);

CREATE TABLE tenant.daily_stats (
	day DATE NOT NULL,
	plays BIGINT NOT NULL,
	listeners BIGINT NOT NULL,
	ms_played BIGINT NOT NULL,
	skips BIGINT NOT NULL,
	streams BIGINT DEFAULT '0' NOT NULL,
	CONSTRAINT pk_daily_stats PRIMARY KEY (day),
	CONSTRAINT ck_daily_stats_plays CHECK (plays >= 0),
	CONSTRAINT ck_daily_stats_listeners CHECK (listeners >= 0),
	CONSTRAINT ck_daily_stats_ms_played CHECK (ms_played >= 0),
	CONSTRAINT ck_daily_stats_skips CHECK (skips >= 0),
	CONSTRAINT ck_daily_stats_streams CHECK (streams >= 0)
);

CREATE TABLE tenant.users (
	user_id VARCHAR(64) NOT NULL,
	display_name VARCHAR(200) NOT NULL,
	email VARCHAR(320),
	country VARCHAR(2),
	product VARCHAR(16) DEFAULT 'free' NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE,
	CONSTRAINT pk_users PRIMARY KEY (user_id),
	CONSTRAINT uq_users_email UNIQUE (email),
	CONSTRAINT ck_users_product CHECK (product IN ('free', 'premium', 'family', 'student'))
);

CREATE TABLE tenant.albums (
	album_id VARCHAR(22) NOT NULL,
	name VARCHAR(400) NOT NULL,
	album_type VARCHAR(16),
	artist_id VARCHAR(22) NOT NULL,
	release_date VARCHAR(10),
	release_date_precision VARCHAR(5),
	total_tracks INTEGER,
	label VARCHAR(400),
	CONSTRAINT pk_albums PRIMARY KEY (album_id),
	CONSTRAINT ck_albums_album_type CHECK (album_type IN ('album', 'single', 'compilation')),
	CONSTRAINT ck_albums_precision CHECK (release_date_precision IN ('year', 'month', 'day')),
	CONSTRAINT ck_albums_total_tracks CHECK (total_tracks > 0),
	CONSTRAINT fk_albums_artist_id_artists FOREIGN KEY(artist_id) REFERENCES tenant.artists (artist_id)
);

CREATE INDEX ix_albums_artist_id ON tenant.albums (artist_id);

CREATE TABLE tenant.playlists (
	playlist_id VARCHAR(22) NOT NULL,
	owner_id VARCHAR(64) NOT NULL,
	name VARCHAR(400) NOT NULL,
	description TEXT,
	public BOOLEAN DEFAULT true NOT NULL,
	collaborative BOOLEAN DEFAULT false NOT NULL,
	followers BIGINT,
	snapshot_id VARCHAR(128),
	created_at TIMESTAMP WITH TIME ZONE,
	CONSTRAINT pk_playlists PRIMARY KEY (playlist_id),
	CONSTRAINT ck_playlists_followers CHECK (followers >= 0),
	CONSTRAINT fk_playlists_owner_id_users FOREIGN KEY(owner_id) REFERENCES tenant.users (user_id)
);

CREATE INDEX ix_playlists_owner_id ON tenant.playlists (owner_id);

CREATE TABLE tenant.product_events (
	event_id VARCHAR(64) NOT NULL,
	user_id VARCHAR(64) NOT NULL,
	occurred_at TIMESTAMP WITH TIME ZONE NOT NULL,
	event_type VARCHAR(64) NOT NULL,
	properties JSONB,
	CONSTRAINT pk_product_events PRIMARY KEY (event_id),
	CONSTRAINT fk_product_events_user_id_users FOREIGN KEY(user_id) REFERENCES tenant.users (user_id) ON DELETE CASCADE
);

CREATE INDEX ix_product_events_occurred_at ON tenant.product_events (occurred_at);

CREATE INDEX ix_product_events_user_id_occurred_at ON tenant.product_events (user_id, occurred_at);

CREATE TABLE tenant.workspaces (
	workspace_id VARCHAR(64) NOT NULL,
	name VARCHAR(200) NOT NULL,
	owner_id VARCHAR(64) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_workspaces PRIMARY KEY (workspace_id),
	CONSTRAINT fk_workspaces_owner_id_users FOREIGN KEY(owner_id) REFERENCES tenant.users (user_id)
);

CREATE INDEX ix_workspaces_owner_id ON tenant.workspaces (owner_id);

CREATE TABLE tenant.comments (
	comment_id VARCHAR(64) NOT NULL,
	workspace_id VARCHAR(64) NOT NULL,
	playlist_id VARCHAR(22),
	author_id VARCHAR(64) NOT NULL,
	body TEXT NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_comments PRIMARY KEY (comment_id),
	CONSTRAINT fk_comments_workspace_id_workspaces FOREIGN KEY(workspace_id) REFERENCES tenant.workspaces (workspace_id) ON DELETE CASCADE,
	CONSTRAINT fk_comments_playlist_id_playlists FOREIGN KEY(playlist_id) REFERENCES tenant.playlists (playlist_id) ON DELETE CASCADE,
	CONSTRAINT fk_comments_author_id_users FOREIGN KEY(author_id) REFERENCES tenant.users (user_id) ON DELETE CASCADE
);

CREATE INDEX ix_comments_author_id ON tenant.comments (author_id);

CREATE INDEX ix_comments_playlist_id ON tenant.comments (playlist_id);

CREATE INDEX ix_comments_workspace_id ON tenant.comments (workspace_id);

CREATE TABLE tenant.tracks (
	track_id VARCHAR(22) NOT NULL,
	name VARCHAR(400) NOT NULL,
	album_id VARCHAR(22) NOT NULL,
	artist_id VARCHAR(22) NOT NULL,
	duration_ms INTEGER,
	explicit BOOLEAN DEFAULT false NOT NULL,
	popularity INTEGER,
	track_number INTEGER,
	isrc VARCHAR(12),
	CONSTRAINT pk_tracks PRIMARY KEY (track_id),
	CONSTRAINT ck_tracks_duration_ms CHECK (duration_ms > 0),
	CONSTRAINT ck_tracks_popularity CHECK (popularity >= 0 AND popularity <= 100),
	CONSTRAINT ck_tracks_track_number CHECK (track_number > 0),
	CONSTRAINT fk_tracks_album_id_albums FOREIGN KEY(album_id) REFERENCES tenant.albums (album_id),
	CONSTRAINT fk_tracks_artist_id_artists FOREIGN KEY(artist_id) REFERENCES tenant.artists (artist_id)
);

CREATE INDEX ix_tracks_album_id ON tenant.tracks (album_id);

CREATE INDEX ix_tracks_artist_id ON tenant.tracks (artist_id);

CREATE TABLE tenant.workspace_members (
	workspace_id VARCHAR(64) NOT NULL,
	user_id VARCHAR(64) NOT NULL,
	role VARCHAR(16) NOT NULL,
	joined_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_workspace_members PRIMARY KEY (workspace_id, user_id),
	CONSTRAINT ck_workspace_members_role CHECK (role IN ('owner', 'editor', 'viewer')),
	CONSTRAINT fk_workspace_members_workspace_id_workspaces FOREIGN KEY(workspace_id) REFERENCES tenant.workspaces (workspace_id) ON DELETE CASCADE,
	CONSTRAINT fk_workspace_members_user_id_users FOREIGN KEY(user_id) REFERENCES tenant.users (user_id) ON DELETE CASCADE
);

CREATE INDEX ix_workspace_members_user_id ON tenant.workspace_members (user_id);

CREATE TABLE tenant.workspace_playlists (
	workspace_id VARCHAR(64) NOT NULL,
	playlist_id VARCHAR(22) NOT NULL,
	added_by VARCHAR(64) NOT NULL,
	added_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_workspace_playlists PRIMARY KEY (workspace_id, playlist_id),
	CONSTRAINT fk_workspace_playlists_workspace_id_workspaces FOREIGN KEY(workspace_id) REFERENCES tenant.workspaces (workspace_id) ON DELETE CASCADE,
	CONSTRAINT fk_workspace_playlists_playlist_id_playlists FOREIGN KEY(playlist_id) REFERENCES tenant.playlists (playlist_id) ON DELETE CASCADE,
	CONSTRAINT fk_workspace_playlists_added_by_users FOREIGN KEY(added_by) REFERENCES tenant.users (user_id)
);

CREATE INDEX ix_workspace_playlists_playlist_id ON tenant.workspace_playlists (playlist_id);

CREATE TABLE tenant.audio_features (
	track_id VARCHAR(22) NOT NULL,
	danceability FLOAT NOT NULL,
	energy FLOAT NOT NULL,
	valence FLOAT NOT NULL,
	acousticness FLOAT NOT NULL,
	instrumentalness FLOAT NOT NULL,
	liveness FLOAT NOT NULL,
	speechiness FLOAT NOT NULL,
	loudness FLOAT NOT NULL,
	tempo FLOAT NOT NULL,
	key INTEGER NOT NULL,
	mode INTEGER NOT NULL,
	time_signature INTEGER NOT NULL,
	CONSTRAINT pk_audio_features PRIMARY KEY (track_id),
	CONSTRAINT ck_audio_features_danceability_unit CHECK (danceability >= 0 AND danceability <= 1),
	CONSTRAINT ck_audio_features_energy_unit CHECK (energy >= 0 AND energy <= 1),
	CONSTRAINT ck_audio_features_valence_unit CHECK (valence >= 0 AND valence <= 1),
	CONSTRAINT ck_audio_features_acousticness_unit CHECK (acousticness >= 0 AND acousticness <= 1),
	CONSTRAINT ck_audio_features_instrumentalness_unit CHECK (instrumentalness >= 0 AND instrumentalness <= 1),
	CONSTRAINT ck_audio_features_liveness_unit CHECK (liveness >= 0 AND liveness <= 1),
	CONSTRAINT ck_audio_features_speechiness_unit CHECK (speechiness >= 0 AND speechiness <= 1),
	CONSTRAINT ck_audio_features_tempo CHECK (tempo > 0),
	CONSTRAINT ck_audio_features_key CHECK ("key" >= -1 AND "key" <= 11),
	CONSTRAINT ck_audio_features_mode CHECK ("mode" IN (0, 1)),
	CONSTRAINT ck_audio_features_time_signature CHECK (time_signature >= 3 AND time_signature <= 7),
	CONSTRAINT fk_audio_features_track_id_tracks FOREIGN KEY(track_id) REFERENCES tenant.tracks (track_id) ON DELETE CASCADE
);

CREATE TABLE tenant.listening_events (
	user_id VARCHAR(64) NOT NULL,
	played_at TIMESTAMP WITH TIME ZONE NOT NULL,
	track_id VARCHAR(22) NOT NULL,
	ms_played INTEGER NOT NULL,
	context_uri VARCHAR(200),
	platform VARCHAR(64),
	reason_start VARCHAR(32),
	reason_end VARCHAR(32),
	shuffle BOOLEAN,
	skipped BOOLEAN,
	CONSTRAINT pk_listening_events PRIMARY KEY (user_id, played_at),
	CONSTRAINT ck_listening_events_ms_played CHECK (ms_played >= 0),
	CONSTRAINT fk_listening_events_user_id_users FOREIGN KEY(user_id) REFERENCES tenant.users (user_id) ON DELETE CASCADE,
	CONSTRAINT fk_listening_events_track_id_tracks FOREIGN KEY(track_id) REFERENCES tenant.tracks (track_id)
);

CREATE INDEX ix_listening_events_played_at ON tenant.listening_events (played_at);

CREATE INDEX ix_listening_events_track_id_played_at ON tenant.listening_events (track_id, played_at);

CREATE TABLE tenant.playlist_tracks (
	playlist_id VARCHAR(22) NOT NULL,
	position INTEGER NOT NULL,
	track_id VARCHAR(22) NOT NULL,
	added_by VARCHAR(64),
	added_at TIMESTAMP WITH TIME ZONE,
	CONSTRAINT pk_playlist_tracks PRIMARY KEY (playlist_id, position),
	CONSTRAINT ck_playlist_tracks_position CHECK (position >= 0),
	CONSTRAINT fk_playlist_tracks_playlist_id_playlists FOREIGN KEY(playlist_id) REFERENCES tenant.playlists (playlist_id) ON DELETE CASCADE,
	CONSTRAINT fk_playlist_tracks_track_id_tracks FOREIGN KEY(track_id) REFERENCES tenant.tracks (track_id),
	CONSTRAINT fk_playlist_tracks_added_by_users FOREIGN KEY(added_by) REFERENCES tenant.users (user_id)
);

CREATE INDEX ix_playlist_tracks_added_by ON tenant.playlist_tracks (added_by);

CREATE INDEX ix_playlist_tracks_track_id ON tenant.playlist_tracks (track_id);

CREATE TABLE tenant.track_daily_stats (
	track_id VARCHAR(22) NOT NULL,
	day DATE NOT NULL,
	plays BIGINT NOT NULL,
	listeners BIGINT NOT NULL,
	ms_played BIGINT NOT NULL,
	skips BIGINT NOT NULL,
	streams BIGINT DEFAULT '0' NOT NULL,
	CONSTRAINT pk_track_daily_stats PRIMARY KEY (track_id, day),
	CONSTRAINT ck_track_daily_stats_plays CHECK (plays >= 0),
	CONSTRAINT ck_track_daily_stats_listeners CHECK (listeners >= 0),
	CONSTRAINT ck_track_daily_stats_ms_played CHECK (ms_played >= 0),
	CONSTRAINT ck_track_daily_stats_skips CHECK (skips >= 0),
	CONSTRAINT ck_track_daily_stats_streams CHECK (streams >= 0),
	CONSTRAINT fk_track_daily_stats_track_id_tracks FOREIGN KEY(track_id) REFERENCES tenant.tracks (track_id) ON DELETE CASCADE
);
