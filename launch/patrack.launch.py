"""Launch the patrack node.

ros2 launch patrack patrack.launch.py modality:=thermal \
    rgb_topic:=/camera/color/image_raw aux_topic:=/thermal/image_raw \
    model_path:=/path/to/patrack_rgbt.safetensors device:=cuda:0
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PRESETS = {"thermal": "rgbt.yaml", "depth": "rgbd.yaml", "event": "rgbe.yaml"}


def _node(context):
    share = FindPackageShare("patrack").perform(context)
    modality = LaunchConfiguration("modality").perform(context)
    if modality not in PRESETS:
        raise RuntimeError(f"modality must be one of {sorted(PRESETS)}, got {modality!r}")
    params = [f"{share}/config/patrack.yaml", f"{share}/config/{PRESETS[modality]}"]
    extra = LaunchConfiguration("params_file").perform(context)
    if extra:
        params.append(extra)
    overrides = {"use_sim_time": LaunchConfiguration("use_sim_time").perform(context) == "true"}
    for name in ("model_path", "device"):
        value = LaunchConfiguration(name).perform(context)
        if value:
            overrides[name] = value
    params.append(overrides)
    return [
        Node(
            package="patrack",
            executable="patrack_node",
            name="patrack",
            namespace=LaunchConfiguration("namespace"),
            output="screen",
            parameters=params,
            remappings=[
                ("rgb/image", LaunchConfiguration("rgb_topic")),
                ("aux/image", LaunchConfiguration("aux_topic")),
                ("rgb/image/compressed", [LaunchConfiguration("rgb_topic"), "/compressed"]),
                ("aux/image/compressed", [LaunchConfiguration("aux_topic"), "/compressed"]),
            ],
        )
    ]


def generate_launch_description():
    args = [
        ("modality", "thermal", "aux camera kind: thermal | depth | event (selects the preset)"),
        ("rgb_topic", "rgb/image", "RGB image topic (sensor_msgs/Image)"),
        ("aux_topic", "aux/image", "auxiliary image topic (sensor_msgs/Image)"),
        ("model_path", "", "weights (.safetensors or .pth.tar); empty keeps the params file's value"),
        ("device", "", "cpu | cuda | cuda:N; empty keeps the params file's value"),
        ("params_file", "", "extra parameters file applied after the presets"),
        ("use_sim_time", "false", "true when replaying a bag with `ros2 bag play --clock`"),
        ("namespace", "", "namespace of the node"),
    ]
    return LaunchDescription(
        [DeclareLaunchArgument(n, default_value=d, description=h) for n, d, h in args]
        + [OpaqueFunction(function=_node)]
    )
