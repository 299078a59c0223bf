"""Launch the patrack node.

ros2 launch patrack patrack.launch.py modality:=thermal \
    rgb_topic:=/camera/color/image_raw aux_topic:=/thermal/image_raw \
    model_path:=/path/to/patrack_rgbt.safetensors device:=cuda:0

Parameters come from config/patrack.yaml, then the modality's preset, then params_file, then
the arguments below that are set; the node merges them in that order and validates once.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PRESETS = {"thermal": "rgbt.yaml", "depth": "rgbd.yaml", "event": "rgbe.yaml"}
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")


def _bool(context, name):
    """A launch argument as a bool, the way ROS 2 users write them (true, True, 1, ...)."""
    value = LaunchConfiguration(name).perform(context).strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off", ""):
        return False
    raise RuntimeError(f"{name} must be true or false, got {value!r}")


def _node(context):
    share = FindPackageShare("patrack").perform(context)
    modality = LaunchConfiguration("modality").perform(context)
    if modality not in PRESETS:
        raise RuntimeError(f"modality must be one of {sorted(PRESETS)}, got {modality!r}")
    params = [f"{share}/config/patrack.yaml", f"{share}/config/{PRESETS[modality]}"]
    extra = LaunchConfiguration("params_file").perform(context)
    if extra:
        params.append(extra)
    overrides = {
        "use_sim_time": _bool(context, "use_sim_time"),
        "autostart": _bool(context, "autostart"),
    }
    for name in ("model_path", "device"):
        value = LaunchConfiguration(name).perform(context)
        if value:
            overrides[name] = value
    if LaunchConfiguration("use_compressed").perform(context):
        overrides["use_compressed"] = _bool(context, "use_compressed")
    bbox = LaunchConfiguration("initial_bbox").perform(context).strip()
    if bbox:
        values = [float(v) for v in bbox.strip("[]").replace(",", " ").split()]
        if len(values) != 4:
            raise RuntimeError(f"initial_bbox must be 4 numbers x,y,w,h, got {bbox!r}")
        overrides["initial_bbox"] = values
    params.append(overrides)
    log_level = LaunchConfiguration("log_level").perform(context).lower()
    if log_level not in LOG_LEVELS:
        raise RuntimeError(f"log_level must be one of {LOG_LEVELS}, got {log_level!r}")
    rgb = LaunchConfiguration("rgb_topic")
    aux = LaunchConfiguration("aux_topic")
    return [
        Node(
            package="patrack",
            executable="patrack_node",
            name="patrack",
            namespace=LaunchConfiguration("namespace"),
            output="screen",
            parameters=params,
            ros_arguments=["--log-level", log_level],
            remappings=[
                ("rgb/image", rgb),
                ("aux/image", aux),
                ("rgb/image/compressed", [rgb, "/compressed"]),
                ("aux/image/compressed", [aux, "/compressed"]),
                ("aux/image/compressedDepth", [aux, "/compressedDepth"]),
                ("rgb/camera_info", LaunchConfiguration("camera_info_topic")),
            ],
        )
    ]


def generate_launch_description():
    args = [
        ("modality", "thermal", "aux camera kind: thermal | depth | event (selects the preset)"),
        ("rgb_topic", "rgb/image", "RGB image topic (sensor_msgs/Image; <topic>/compressed with use_compressed)"),
        ("aux_topic", "aux/image", "auxiliary image topic (sensor_msgs/Image)"),
        ("camera_info_topic", "rgb/camera_info", "the RGB camera's sensor_msgs/CameraInfo (depth modality: 3D outputs)"),
        ("model_path", "", "weights (.safetensors or .pth.tar); empty keeps the params file's value"),
        ("device", "", "auto | cpu | cuda | cuda:N; empty keeps the params file's value"),
        ("params_file", "", "extra parameters file applied after the presets"),
        ("use_sim_time", "false", "true when replaying a bag with `ros2 bag play --clock`"),
        ("use_compressed", "", "true: both cameras on <topic>/compressed; empty keeps the params file's value"),
        ("initial_bbox", "", "x,y,w,h in pixels of the first pair; empty: wait for ~/init"),
        ("autostart", "true", "false: start unconfigured and wait for lifecycle transitions"),
        ("log_level", "info", "debug | info | warn | error | fatal"),
        ("namespace", "", "namespace of the node"),
    ]
    return LaunchDescription(
        [DeclareLaunchArgument(n, default_value=d, description=h) for n, d, h in args]
        + [OpaqueFunction(function=_node)]
    )
