"""The parameters each node declares, with their defaults and what they mean
(ROS-free). :mod:`robot_memory.bringup.launch_spec` builds the stacks from
them; each node declares its table (:mod:`robot_memory.nodes.parameters`).
"""

from __future__ import annotations

ParamValue = bool | int | float | str | list[float] | list[int] | list[str]

#: How camera images travel (image_transport's names): ``raw`` sensor_msgs/Image,
#: ``compressed`` JPEG colour on ``<image>/compressed`` and PNG depth on
#: ``<image>/compressedDepth`` (sensor_msgs/CompressedImage).
IMAGE_TRANSPORTS = ("raw", "compressed")


SIM_PARAMETERS: dict[str, ParamValue] = {
    "scene": "tabletop",
    "seed": 0,
    "panda_visual": "auto",
    "physics_rate": 500.0,
    "real_time_factor": 1.0,
    "cameras": ["front", "wrist"],
    "image_width": 320,
    "image_height": 240,
    "camera_rate": 10.0,
    "depth_encoding": "16UC1",
    # raw: sensor_msgs/Image (shared memory on one host); compressed: image_transport's
    # .../image_raw/compressed (JPEG) and .../compressedDepth (PNG) for a network link
    "image_transport": "raw",
    "jpeg_quality": 90,
    "depth_noise": "none",  # none | realsense: a D400-class camera's noise, holes, quantization
    "extrinsic_error_mm": 0.0,  # the published camera mounts off by this much (calibration)
    "extrinsic_error_deg": 0.0,
    "joint_state_rate": 100.0,
    "ground_truth_rate": 5.0,
    "world_frame": "world",
    "arm_id": "panda",  # TF frames <arm_id>_link0..7, <arm_id>_hand (franka_description's)
}


EXPERT_PARAMETERS: dict[str, ParamValue] = {
    "object_id": "",  # empty: wait for a task on /expert/task
    "place_id": "bin",
    "move_speed": 0.5,  # fraction of the Panda's joint velocity limits
    "start_delay": 1.0,
}


PERCEPTION_PARAMETERS: dict[str, ParamValue] = {
    "cameras": ["front", "wrist"],
    "cell_file": "",  # empty: the shipped tabletop cell (config/cell_tabletop.json)
    "use_robot_mask": True,  # remove the arm's points using /joint_states and the Panda model
    "stride": 2,  # back-project every n-th pixel
    "max_rate_hz": 0.0,  # frames processed per camera and second, staggered (0: every frame)
    "num_threads": 2,
    "sync_tolerance_s": 0.02,  # colour and depth stamps this close are one frame
    "image_transport": "raw",  # raw | compressed (the cameras' image_transport topics)
    # camera extrinsics: world_frame <- the image's header.frame_id in /tf at the image stamp
    "world_frame": "world",
    "camera_frames": "",  # per-camera TF frame overrides: "front=my_optical_frame,wrist=..."
    "tf_cache_s": 10.0,  # dynamic transforms kept this long
    "transform_wait_s": 0.3,  # a frame waits this long (stream time) for its /tf, then dropped
    # object categories (docs/perception.md, "Labelling"): features | rules | vlm | image_text
    "labeller": "features",
    "labeller_model_dir": "",  # features: its model folder (empty: shipped); image_text: required
    "labeller_categories": "",  # vlm / image_text: comma-separated words (empty: the classifier's)
    "labeller_vlm_base_url": "http://localhost:8000/v1",
    "labeller_vlm_model": "",
    "labeller_vlm_api_key_env": "OPENAI_API_KEY",  # the variable's NAME, never the key
    "labeller_vlm_timeout_s": 10.0,
}


MEMORY_PARAMETERS: dict[str, ParamValue] = {
    "cell_file": "",
    "store_path": "~/.robot_memory/memory.sqlite",  # empty: in-memory only
    "reset_on_start": False,  # True: wipe the store at start (never on a respawn)
    "publish_period_s": 0.2,  # scene graph and markers at most this often
    "preload_embedder": True,  # load the text model at start, not on the first query
    "world_frame": "world",
    # /memory/reset from any DDS peer wipes memory and its store: refused (and
    # counted) unless true; true in the sim stack for the memoryless ablation
    "allow_remote_reset": False,
    # an update considers only objects this close (xy) to the camera or a sighting
    # [m] (the active window: building-scale memories); 0.0: every object
    "active_radius": 3.0,
}


SAFETY_PARAMETERS: dict[str, ParamValue] = {
    # where the arm's base sits in the world frame the workspace box is in (the
    # tabletop cell's; world = the table frame): the TCP kinematics' mount
    "robot_base_position": [-0.45, 0.0, 0.0],  # [m]
    "robot_base_quaternion": [1.0, 0.0, 0.0, 0.0],  # w, x, y, z
    "position_margin": 0.0,  # [rad] kept clear of each joint limit
    "velocity_scale": 1.0,  # fraction of the Panda's joint velocity limits
    "acceleration_scale": 1.0,  # fraction of the Panda's joint acceleration limits
    "workspace_min": [-0.6, -0.5, 0.005],  # TCP box in the table frame [m]
    "workspace_max": [0.6, 0.5, 0.8],
    # watchdog: hold when a chunk, or a frame of a watched camera, is this much
    # later than its stream's measured interval (first guesses below)
    "watchdog_timeout_s": 0.15,  # + one tick (1 / rate) <= 0.2 s
    "expected_chunk_interval_s": 0.7,  # the policy's (n_action_steps - 1) * dt
    "expected_frame_interval_s": 0.1,
    # camera_info topics whose frames must keep coming while the arm moves ([]: none)
    "watched_cameras": ["/camera/front/color/camera_info", "/camera/wrist/color/camera_info"],
    "max_chunk_age_s": 1.0,  # reject chunks whose observation is older than this
    "min_lead_s": 0.05,  # the first point sent is at least this far ahead
    # velocities of a new chunk are checked from the setpoint the controller is
    # at (it interpolates from there) while the arm tracks it within this [rad]
    "tracking_tolerance": 0.15,
    "gripper_deadband_m": 0.005,  # resend the gripper width only when it moves more
    # trusted joint states: within the limits plus this [rad], no faster than
    # 1.5x the velocity limit plus the jump tolerance [rad], one publisher
    # (another is trusted after the first was silent this long [s])
    "joint_state_tolerance": 0.02,
    "joint_state_jump_tolerance": 0.05,
    "joint_state_publisher_timeout_s": 0.5,
    "rate": 50.0,  # [Hz] watchdog and gripper schedule
}


POLICY_PARAMETERS: dict[str, ParamValue] = {
    # checkpoint folder; empty: the shipped models/diffusion_pick_place (sampler
    # consistency: models/consistency_pick_place, the one-step distilled policy)
    "checkpoint": "",
    "device": "auto",  # auto | cuda | cpu
    "sampler": "ddim",  # ddim | ddpm | consistency
    "num_inference_steps": 0,  # 0: the checkpoint's (DDIM 10, consistency 1, DDPM all)
    "n_action_steps": 8,  # executed points per chunk (<= horizon - n_obs_steps + 1)
    "max_observation_age_s": 0.5,  # drop a chunk whose observation is older when it is done
    "timeout_s": 15.0,  # a skill still running after this long has failed
    "torch_threads": 0,  # CPU inference threads; 0: torch's default
    "half_precision": True,  # float16 on CUDA (ignored on the CPU)
    "compile": True,  # CUDA only: torch.compile + CUDA graphs (~15 s at start; 6x eager)
    "ik_attempts": 3,  # samples drawn for one chunk before an IK miss fails the skill
}


PLANNER_PARAMETERS: dict[str, ParamValue] = {
    "backend": "offline",  # offline | vlm (the VLM falls back to offline when it fails)
    "vlm.base_url": "http://localhost:8000/v1",  # OpenAI-compatible endpoint
    "vlm.model": "",  # served model name; required with backend vlm
    "vlm.api_key_env": "OPENAI_API_KEY",  # NAME of the variable holding the key
    "vlm.timeout_s": 20.0,
    "vlm.max_retries": 2,
    "vlm.memory_tools": False,  # memory's queries as tools instead of a graph summary
    "vlm.max_tool_rounds": 6,  # model turns that may call tools before it must plan
    # latest frame goes to the VLM; a topic ending in /compressed is a CompressedImage
    "image_topic": "/camera/front/color/image_raw",
    "experience_path": "~/.robot_memory/experience.json",  # empty: not persisted
    "handover_position": [0.0, -0.05, 0.0],  # where "give me X" puts it [m, table frame]
    # questions about the past: how the clock maps to days ("yesterday", "on day 3");
    # a robot: 86400 s from a midnight (epoch seconds); a simulated week compresses days
    "day_length_s": 86400.0,
    "day_origin_s": 0.0,
    "max_attempts": 3,  # per object: the first try and two replans
    "skill_timeout_s": 60.0,  # no RunSkill result this long: the goal is cancelled, failed
    "refresh_timeout_s": 5.0,  # wait this long for a scene graph newer than a look
    "query_timeout_s": 5.0,  # wait this long for the /memory/query service to answer
    "memoryless": False,  # ablation: clear memory before planning and each step
    # accept an ExecuteInstruction goal with memoryless true (it resets memory
    # over /memory/reset); match the memory node's allow_remote_reset
    "allow_memoryless": False,
}


VIEWER_PARAMETERS: dict[str, ParamValue] = {
    "web_port": 9090,  # the page: http://<host>:9090 (Rerun's web viewer, served from the wheel)
    "grpc_port": 9876,  # where the page streams from (rerun+http://<host>:9876/proxy)
    "memory_limit": "256MiB",  # what the server keeps for a browser that opens late
    "cameras": ["front", "wrist"],
    "image_transport": "raw",  # raw | compressed (JPEG passed to the browser as is)
    "image_rate_hz": 5.0,  # frames per camera sent to the browser
    "jpeg_quality": 80,  # raw frames are sent on as JPEG; compressed ones unchanged
    "robot_rate_hz": 10.0,  # arm redraws per second
    "world_frame": "world",
    "arm_id": "panda",  # TF frames <arm_id>_link0..7, <arm_id>_hand
}
